"""msgworker send: one outbox row per key, clear refusals, --at in the station's zone, --wait for the decision."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support.cli import run
from worker.db import session_scope
from worker.models import OutboundMessage, Station
from worker.outbound.send import send_one
from worker.provider.fake import FakeTwilio


@pytest.fixture
def station_code(cli: CliRunner) -> str:
    with session_scope() as s:
        return make_station(s, code="SEND1", timezone="America/Chicago").code


def test_send_queues_one_row_per_key(cli: CliRunner, station_code: str) -> None:
    """The same --key twice is one row; the second run says it already exists."""
    to = phone()
    code, out = run(cli, "send", to, "Your deposit is received", "--station", station_code,
                    "--purpose", "transactional", "--key", "dep-1", "--json")
    assert code == 0, out
    first = json.loads(out.strip().splitlines()[-1])
    assert first["created"] is True
    assert first["status"] == "pending"
    assert first["to"].endswith(to[-2:])
    assert to not in out
    code, out = run(cli, "send", to, "Your deposit is received", "--station", station_code,
                    "--purpose", "transactional", "--key", "dep-1")
    assert code == 0
    assert f"outbox {first['id']} exists (same key)" in out
    with session_scope() as s:
        assert len(s.execute(select(OutboundMessage)).scalars().all()) == 1


def test_send_at_without_offset_is_the_station_zone(cli: CliRunner, station_code: str) -> None:
    """--at 2030-01-05T10:00 at a Chicago station means 10:00 Chicago time."""
    code, out = run(cli, "send", phone(), "Reminder", "--station", station_code, "--purpose", "marketing",
                    "--at", "2030-01-05T10:00", "--json")
    assert code == 0, out
    row = json.loads(out.strip().splitlines()[-1])
    assert datetime.fromisoformat(row["not_before"]) == datetime(2030, 1, 5, 10, 0, tzinfo=ZoneInfo("America/Chicago"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["12345", "hi", "--station", "SEND1", "--purpose", "transactional"], "not a possible phone number"),
        (["+14155550100", "hi", "--station", "NOPE", "--purpose", "transactional"], "no station with code"),
        (["+14152000001", " ", "--station", "SEND1", "--purpose", "transactional"], "body is empty"),
        (["+14152000001", "hi", "--station", "SEND1", "--purpose", "transactional", "--at", "tomorrow"],
         "is not an ISO time"),
        (["+14152000001", "hi", "--station", "SEND1", "--purpose", "compliance"], "Invalid value"),
    ],
)
def test_send_refuses_bad_input_clearly(cli: CliRunner, station_code: str, args: list[str], message: str) -> None:
    """Bad numbers, unknown stations, empty bodies, bad times and system-only purposes exit non-zero with a reason."""
    code, out = run(cli, "send", *args)
    assert code != 0
    assert message in out
    with session_scope() as s:
        assert s.execute(select(OutboundMessage)).scalars().all() == []


def test_send_wait_reports_the_decision(cli: CliRunner, station_code: str, fake_twilio: FakeTwilio) -> None:
    """--wait polls until the send path has decided, then prints decision and sid."""
    to = phone()
    with session_scope() as s:
        st = s.execute(select(Station).where(Station.code == station_code)).scalar_one()
        make_booking(s, make_customer(s, st, phone_e164=to))
    key = f"wait-{uuid.uuid4().hex}"

    def worker_stand_in() -> None:
        # What the release tick + send task would do, once the row exists.
        for _ in range(100):
            with session_scope() as s:
                row = s.execute(
                    select(OutboundMessage).where(OutboundMessage.idempotency_key == key)
                ).scalar_one_or_none()
                mid = row.id if row else None
            if mid is not None:
                send_one(mid)
                return
            threading.Event().wait(0.05)

    helper = threading.Thread(target=worker_stand_in)
    helper.start()
    code, out = run(cli, "send", to, "Chef confirmed for 6pm", "--station", station_code,
                    "--purpose", "transactional", "--key", key, "--wait", "10")
    helper.join()
    assert code == 0, out
    assert "status=sent" in out
    assert "decision=allowed" in out
    assert "sid=SM" in out
