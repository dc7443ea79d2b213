"""Campaign routes against the real database: the CLI's services, one audit row per change, clear 404/409/422,
progress that sums to the audience and agrees with ``msgworker campaign status``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from tests.support.campaigns import run_tick
from tests.support.cli import run
from worker.db import session_scope
from worker.models import AuditLog, Campaign


def _audit(resource_id: object) -> list[AuditLog]:
    with session_scope() as s:
        return list(s.execute(select(AuditLog).where(AuditLog.resource_type == "campaign",
                                                     AuditLog.resource_id == str(resource_id))
                              .order_by(AuditLog.created_at)).scalars())


def _broadcast(world: World, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "broadcast", "name": "Grill night", "station_code": world.a.code,
                            "template": "{brand}: grill night, {first_name}",
                            "at": (datetime.now(UTC) + timedelta(seconds=2)).isoformat()}
    body.update(changes)
    return body


def test_a_campaign_created_started_paused_resumed_and_cancelled_is_audited_once_per_change(
    api: TestClient, world: World, cli: CliRunner
) -> None:
    """Each change answers the campaign with its progress and writes exactly one audit row naming the token;
    the progress sums to the audience and equals what `msgworker campaign status` prints."""
    created = api.post("/campaigns", json=_broadcast(world), headers=world.auth("STATION_MANAGER"))
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["status"], campaign["station_id"], campaign["purpose"]) == ("draft", str(world.a.station_id),
                                                                                "marketing")
    cid = campaign["id"]
    started = api.post(f"/campaigns/{cid}/start", headers=world.auth("STATION_MANAGER"))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "scheduled"
    assert started.json()["progress"]["audience"] == 0  # nothing materialised before the first run
    with session_scope() as s:  # the tick's steps, as beat runs them, a moment after the planned time
        run_tick(s, datetime.now(UTC) + timedelta(seconds=5))
    status = api.get(f"/campaigns/{cid}/status", headers=world.auth("STATION_MANAGER")).json()
    assert status["audience"] == 2  # station A's two customers
    assert sum(status["states"].values()) == status["audience"] == sum(r["count"] for r in status["by_step"])
    code, out = run(cli, "campaign", "status", cid, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert (shown["states"], shown["audience"], shown["decided"], shown["sent"]) == (
        status["states"], status["audience"], status["decided"], status["sent"])
    for action, state in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        changed = api.post(f"/campaigns/{cid}/{action}", headers=world.auth("ADMIN"))
        assert changed.status_code == 200, changed.text
        assert changed.json()["status"] == state
        assert sum(changed.json()["progress"]["states"].values()) == 2
    rows = _audit(cid)
    assert [(r.action.value, r.reason) for r in rows] == [
        ("CREATE", None), ("UPDATE", "started"), ("UPDATE", "paused"), ("UPDATE", "resumed"),
        ("UPDATE", "cancelled")]
    assert rows[0].actor.startswith("api:test-station_manager;role=STATION_MANAGER;token=")
    assert rows[2].actor.startswith("api:test-admin;role=ADMIN;token=")


def test_refusals_are_404_409_and_422_in_the_error_body(api: TestClient, world: World) -> None:
    """An unknown campaign is 404; a change its state refuses is 409; a schedule or template the service refuses,
    or a time without an offset, is 422 naming the field; nothing is written by any of them."""
    def count() -> int:
        with session_scope() as s:
            return int(s.execute(select(func.count()).select_from(Campaign)).scalar_one())

    def audit_count() -> int:
        with session_scope() as s:
            return int(s.execute(select(func.count()).select_from(AuditLog)).scalar_one())

    before = (count(), audit_count())
    admin = world.auth("ADMIN")
    missing = api.post(f"/campaigns/{uuid.uuid4()}/start", headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    again = api.post(f"/campaigns/{world.a.campaigns.paused_id}/pause", headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert "is paused: cannot pause it" in again.json()["message"]
    draft_resume = api.post(f"/campaigns/{world.a.campaigns.draft_id}/resume", headers=admin)
    assert draft_resume.status_code == 409
    past = api.post("/campaigns", json=_broadcast(world, at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()),
                    headers=admin)
    assert past.status_code == 422, past.text
    naive = api.post("/campaigns", json=_broadcast(world, at="2030-01-01T10:00:00"), headers=admin)
    assert (naive.status_code, naive.json()["field"]) == (422, "at")
    bad_template = api.post("/campaigns", json=_broadcast(world, template="{brand}: {secret_field}"), headers=admin)
    assert (bad_template.status_code, bad_template.json()["field"]) == (422, "template")
    unknown_station = api.post("/campaigns", json=_broadcast(world, station_code="NOPE99"), headers=admin)
    assert unknown_station.status_code == 404
    assert (count(), audit_count()) == before


def test_a_station_manager_cannot_create_an_all_station_campaign(api: TestClient, world: World) -> None:
    """No station_code means every station: the insert fails the campaigns policy's WITH CHECK (404, no row);
    an admin may."""
    body = _broadcast(world)
    del body["station_code"]
    refused = api.post("/campaigns", json=body, headers=world.auth("STATION_MANAGER"))
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    with session_scope() as s:
        assert s.execute(select(func.count()).select_from(Campaign).where(Campaign.station_id.is_(None))
                         ).scalar_one() == 0
    allowed = api.post("/campaigns", json=body, headers=world.auth("ADMIN"))
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["station_id"] is None


def test_the_preview_is_the_gate_dry_run_and_writes_nothing(api: TestClient, world: World) -> None:
    """The draft's audience by outcome at its planned time, numbers masked; no audit row, no outbox row."""
    with session_scope() as s:
        before = int(s.execute(select(func.count()).select_from(AuditLog)).scalar_one())
    shown = api.get(f"/campaigns/{world.a.campaigns.draft_id}/preview", headers=world.auth("STATION_MANAGER"))
    assert shown.status_code == 200, shown.text
    preview = shown.json()
    assert preview["audience"] == 2
    assert sum(preview["outcomes"].values()) == 2
    assert world.a.phone not in shown.text
    with session_scope() as s:
        assert int(s.execute(select(func.count()).select_from(AuditLog)).scalar_one()) == before
