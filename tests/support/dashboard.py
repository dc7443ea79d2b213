"""The dashboard in-process for integration tests: mounted at /dashboard as in worker/web/app.py, signed in
through its real sign-in form (the CSRF token read from the page, as a browser would)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy.orm import Session

from tests.support.asgi import TestClient
from worker.audit import Actor
from worker.campaigns import schedules
from worker.campaigns.definitions import CampaignSpec, create_campaign
from worker.models import Campaign
from worker.web.dashboard.app import MOUNT_PATH, create_dashboard_app

__all__ = ["CSRF", "csrf_of", "dashboard_client", "sign_in_with_password", "sign_in_with_token", "station_campaign"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


@contextmanager
def dashboard_client() -> Iterator[TestClient]:
    app = FastAPI()
    app.mount(MOUNT_PATH, create_dashboard_app())
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield client


def _sign_in(client: TestClient, fields: dict[str, str]) -> None:
    form = client.get(f"{MOUNT_PATH}/sign-in")
    assert form.status_code == 200
    done = client.post(f"{MOUNT_PATH}/sign-in", data={**fields, "csrf_token": csrf_of(form.text)})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{MOUNT_PATH}/"


def sign_in_with_token(client: TestClient, token: str) -> None:
    _sign_in(client, {"method": "token", "token": token})


def sign_in_with_password(client: TestClient, email: str, password: str) -> None:
    _sign_in(client, {"method": "password", "email": email, "password": password})


def station_campaign(session: Session, code: str, *, name: str = "Winter 20") -> Campaign:
    """A draft broadcast to one station's customers, a day from now, made by the campaign service."""
    spec = CampaignSpec(kind="broadcast", name=name, station_code=code, template="{brand}: 20% off this week",
                        schedule=schedules.ScheduleInput(at=datetime.now(UTC) + timedelta(days=1)))
    return create_campaign(session, spec, Actor.cli("marketer"), now=datetime.now(UTC))
