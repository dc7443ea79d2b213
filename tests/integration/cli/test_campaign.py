"""The marketer's commands, in-process against the real database: refusals with one line, --json output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from tests.factories import make_station
from tests.support.campaigns import audience, pool_with_codes
from tests.support.cli import run
from worker.db import session_scope


@pytest.fixture
def station_code(cli: CliRunner) -> str:
    with session_scope() as s:
        station = make_station(s)
        audience(s, station, 3)
        return station.code


@pytest.mark.parametrize(("args", "why"), [
    (["--station", "NOPE"], "no station with code 'NOPE'"),
    (["--template", "Hi {frist_name}"], "unknown placeholder {frist_name}"),
    (["--at", "2020-01-01T10:00"], "is in the past"),
    (["--rrule", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"], "never fires"),
])
def test_bad_input_is_refused_with_one_line(cli: CliRunner, station_code: str, args: list[str], why: str) -> None:
    """An unknown station, an unknown placeholder, a past time and a never-firing RRULE: exit 1, the reason."""
    base = {"--kind": "broadcast", "--name": "x", "--station": station_code, "--template": "{brand}: hello",
            "--at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    code, out = run(cli, "campaign", "create", *[x for kv in base.items() for x in kv])
    assert code == 1
    assert why in out
    assert "Traceback" not in out


def test_create_preview_start_status_with_json(cli: CliRunner, station_code: str) -> None:
    """A coupon campaign is created, previewed (3 allowed, nothing written), started; status sums to the audience."""
    with session_scope() as s:
        pool = pool_with_codes(s, 3)
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, out = run(cli, "campaign", "create", "--kind", "coupon", "--name", "c", "--station", station_code,
                    "--pool", str(pool), "--template", "{brand}: {coupon_code}", "--at", at, "--json", "--by", "amy")
    assert code == 0, out
    created = json.loads(out)
    assert created["purpose"] == "marketing"
    assert created["template"].endswith("Reply STOP to opt out.")
    code, out = run(cli, "campaign", "preview", created["id"], "--json")
    assert code == 0, out
    preview = json.loads(out)
    assert preview["audience"] == 3
    assert sum(preview["outcomes"].values()) == 3
    assert preview["pool_available"] == 3
    assert preview["segments"] == 1
    code, out = run(cli, "campaign", "start", created["id"], "--json")
    assert code == 0, out
    assert json.loads(out)["status"] == "scheduled"
    code, out = run(cli, "campaign", "status", created["id"], "--json")
    assert json.loads(out)["audience"] == 0  # nothing expanded before the first run
    code, out = run(cli, "campaign", "start", created["id"])
    assert code == 1
    assert "is scheduled: cannot start it" in out
