"""msgworker station/sender add|list against the real database: validation, audit, output."""

from __future__ import annotations

import getpass
import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.support.cli import run
from worker.db import session_scope
from worker.models import AuditAction, AuditLog, Station, StationSender


def add_station(cli: CliRunner, code: str = "NYC01", tz: str = "America/New_York") -> tuple[int, str]:
    return run(
        cli,
        "station",
        "add",
        "--code",
        code,
        "--name",
        "Manhattan",
        "--timezone",
        tz,
        "--brand",
        "Hibachi Home",
        "--help-text",
        "Hibachi Home: help at 555-0100. Reply STOP to opt out.",
    )


def counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return (
            s.scalar(select(func.count()).select_from(Station)) or 0,
            s.scalar(select(func.count()).select_from(StationSender)) or 0,
            s.scalar(select(func.count()).select_from(AuditLog)) or 0,
        )


def test_station_add_list_and_audit(cli: CliRunner) -> None:
    """A new station is stored, listed, and audited as created by cli:<os user>."""
    code, out = add_station(cli)
    assert code == 0, out
    assert "station NYC01 created" in out

    code, out = run(cli, "station", "list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("NYC01"))
    assert "America/New_York" in line
    assert "Manhattan / Hibachi Home" in line

    code, out = run(cli, "station", "list", "--json")
    [row] = json.loads(out)
    assert row["code"] == "NYC01"
    assert row["senders"] == 0

    with session_scope() as s:
        entry = s.scalars(select(AuditLog)).one()
        station = s.scalars(select(Station)).one()
        assert entry.actor == f"cli:{getpass.getuser()}"
        assert entry.action is AuditAction.CREATE
        assert (entry.resource_type, entry.resource_id, entry.station_id) == ("station", str(station.id), station.id)
        assert entry.new_values is not None
        assert entry.new_values["timezone"] == "America/New_York"


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("America/NewYork", "did you mean America/New_York?"),
        ("america/new_york", "did you mean America/New_York?"),
        ("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        ("../etc/passwd", "unknown time zone"),
    ],
)
def test_station_add_refuses_unknown_timezone(cli: CliRunner, tz: str, expected: str) -> None:
    """A time zone the zone database does not know is refused with a hint, and nothing is stored."""
    code, out = add_station(cli, tz=tz)
    assert code == 1
    assert expected in out
    assert "Traceback" not in out
    assert counts() == (0, 0, 0)


def test_station_add_refuses_duplicate_code(cli: CliRunner) -> None:
    """A second station with the same code (in any case) is refused with a clear line, not a traceback."""
    assert add_station(cli)[0] == 0
    code, out = add_station(cli, code="nyc01")
    assert code == 1
    assert "already exists" in out
    assert "Traceback" not in out
    assert counts() == (1, 0, 1)


def test_station_add_refuses_bad_code(cli: CliRunner) -> None:
    """A code with spaces or punctuation is refused before anything is written."""
    code, out = add_station(cli, code="NYC 01;")
    assert code == 1
    assert "station code" in out
    assert "not valid" in out
    assert counts() == (0, 0, 0)


def test_station_add_warns_about_help_text_without_stop(cli: CliRunner) -> None:
    """A HELP text that omits opt-out instructions is stored but warned about (CTIA)."""
    code, out = run(
        cli,
        "station",
        "add",
        "--code",
        "BOS01",
        "--name",
        "Boston",
        "--timezone",
        "America/New_York",
        "--brand",
        "Hibachi Home",
        "--help-text",
        "Hibachi Home, call us",
    )
    assert code == 0
    assert "warning: help text does not say how to opt out" in out


def test_sender_add_normalizes_sms_number_and_audits(cli: CliRunner) -> None:
    """A loosely written SMS number is stored in E.164 with a long-code rate; the creation is audited."""
    assert add_station(cli)[0] == 0
    sid = "MG" + "ab" * 16
    code, out = run(
        cli,
        "sender",
        "add",
        "--station",
        "NYC01",
        "--channel",
        "sms",
        "--address",
        "(212) 300-0042",
        "--messaging-service-sid",
        sid,
    )
    assert code == 0, out
    assert "sms sender +12123000042 added to station NYC01" in out

    code, out = run(cli, "sender", "list", "--json")
    [row] = json.loads(out)
    assert row == {
        "id": row["id"],
        "station": "NYC01",
        "channel": "sms",
        "address": "+12123000042",
        "messaging_service_sid": sid,
        "rate_per_second": 1.0,
        "active": True,
    }
    code, out = run(cli, "sender", "list", "--station", "NYC01")
    assert "+12123000042" in out
    assert sid in out

    with session_scope() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.resource_type == "station_sender")).one()
        assert entry.resource_id == row["id"]
        assert entry.new_values is not None
        assert entry.new_values["address"] == "+12123000042"


@pytest.mark.parametrize(
    ("address", "stored", "rate"),
    [
        ("+1 800 555 1212", "+18005551212", 3.0),  # toll-free: 3 MPS by default
        ("32665", "32665", 100.0),  # short code
    ],
)
def test_sender_default_rate_by_number_type(cli: CliRunner, address: str, stored: str, rate: float) -> None:
    """Toll-free numbers and short codes get their own default sending rate."""
    assert add_station(cli)[0] == 0
    code, out = run(cli, "sender", "add", "--station", "NYC01", "--channel", "sms", "--address", address)
    assert code == 0, out
    with session_scope() as s:
        sender = s.scalars(select(StationSender)).one()
        assert (sender.address, sender.rate_per_second) == (stored, rate)


def test_sender_add_meta_page(cli: CliRunner) -> None:
    """A Facebook page id is stored as given (digits)."""
    assert add_station(cli)[0] == 0
    code, out = run(cli, "sender", "add", "--station", "NYC01", "--channel", "facebook", "--address", "104857600012345")
    assert code == 0, out
    code, out = run(cli, "sender", "list")
    assert "facebook" in out
    assert "104857600012345" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--channel", "sms", "--address", "555-0100"], "not a usable phone number"),
        (["--channel", "sms", "--address", "+1 555 555 0100"], "not a valid (assigned) phone number"),
        (["--channel", "fax", "--address", "+12123000042"], "unknown channel 'fax'"),
        (["--channel", "facebook", "--address", "my-page"], "not a Facebook page id"),
        (
            ["--channel", "sms", "--address", "+12123000042", "--messaging-service-sid", "MG123"],
            "messaging service SID 'MG123' is not valid",
        ),
        (
            ["--channel", "facebook", "--address", "104857600012345", "--messaging-service-sid", "MG" + "0" * 32],
            "sms channel only",
        ),
        (["--channel", "sms", "--address", "+12123000042", "--rate", "0"], "rate per second"),
    ],
)
def test_sender_add_refuses_bad_input(cli: CliRunner, args: list[str], expected: str) -> None:
    """Bad channel, address, SID or rate is refused with a message naming the problem; nothing is stored."""
    assert add_station(cli)[0] == 0
    code, out = run(cli, "sender", "add", "--station", "NYC01", *args)
    assert code == 1
    assert expected in out
    assert "Traceback" not in out
    assert counts() == (1, 0, 1)


def test_sender_add_refuses_unknown_station(cli: CliRunner) -> None:
    """A sender for a station code that does not exist is refused and says how to create it."""
    code, out = run(cli, "sender", "add", "--station", "NOPE", "--channel", "sms", "--address", "+12123000042")
    assert code == 1
    assert "no station with code 'NOPE'" in out
    assert "msgworker station add" in out


def test_sender_address_belongs_to_one_station(cli: CliRunner) -> None:
    """The same number, spelled differently, cannot be registered to a second station."""
    assert add_station(cli, "NYC01")[0] == 0
    assert add_station(cli, "NYC02")[0] == 0
    assert run(cli, "sender", "add", "--station", "NYC01", "--channel", "sms", "--address", "+12123000042")[0] == 0
    code, out = run(cli, "sender", "add", "--station", "NYC02", "--channel", "sms", "--address", "212.300.0042")
    assert code == 1
    assert "+12123000042 already belongs to station 'NYC01'" in out
    assert counts() == (2, 1, 3)


def test_lists_say_how_to_start_when_empty(cli: CliRunner) -> None:
    """Empty lists point at the command that fills them."""
    assert "msgworker station add" in run(cli, "station", "list")[1]
    assert "msgworker sender add" in run(cli, "sender", "list")[1]
