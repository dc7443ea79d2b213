"""msgworker send held / release through the installed `msgworker` script: list, release, cancel, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import pytest

from tests.factories import make_station
from tests.integration.outbound.test_held import at_ny, toll_free
from tests.integration.outbound.test_send import add_consent, row, settings_with
from tests.support.processes import VENV_BIN
from worker.db import session_scope
from worker.outbound.send import send_one
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.usefixtures("clean_db", "clean_redis")


def msgworker(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script, in this test run's environment (its database and keys)."""
    return subprocess.run(
        [str(VENV_BIN / "msgworker"), *args],
        env={**os.environ, "LOG_FORMAT": "console"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_send_held_and_release_through_the_cli(fake_twilio: FakeTwilio, clean_redis: Any) -> None:
    """Queue two toll-free marketing texts with `msgworker send`, let the gate hold them, list them
    (masked, no body), release one as Texas and cancel the other; mistakes exit 1 with a reason."""
    with session_scope() as s:
        code = make_station(s, code="HELD1", timezone="America/Chicago").code
    numbers = [toll_free(), toll_free()]
    body = "Hibachi night: 15% off, reply STOP to opt out"
    ids = []
    for to in numbers:
        add_consent(None, to)
        queued = msgworker("send", to, body, "--station", code, "--purpose", "marketing", "--json")
        assert queued.returncode == 0, queued.stderr
        ids.append(uuid.UUID(json.loads(queued.stdout.strip().splitlines()[-1])["id"]))
        assert send_one(ids[-1], now=at_ny(12), settings=settings_with()).reason == "zone_unknown"
    keep, drop = ids

    listed = msgworker("send", "held", "--station", code.lower(), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [str(keep), str(drop)]
    assert rows[0]["station"] == code
    assert rows[0]["purpose"] == "marketing"
    assert rows[0]["body_length"] == len(body)
    assert rows[0]["to"].endswith(numbers[0][-2:])
    plain = msgworker("send", "held")
    assert plain.returncode == 0
    assert f"{keep}  station {code}" in plain.stdout
    assert "2 held" in plain.stdout
    for output in (listed, plain):
        assert not any(to in output.stdout + output.stderr for to in numbers)
        assert body not in output.stdout + output.stderr

    released = msgworker("send", "release", str(keep), "--state", "tx", "--by", "alice", "--note", "lives in Austin")
    assert released.returncode == 0, released.stderr
    assert f"released {keep}: recipient in TX (by alice)" in released.stdout
    assert not any(to in released.stdout + released.stderr for to in numbers)
    msg = row(keep)
    assert (msg.status, msg.recipient_state, msg.reviewed_by, msg.review_note) == (
        "pending", "TX", "alice", "lives in Austin"
    )

    refused(msgworker("send", "release", str(keep), "--state", "TX", "--by", "carol"), "already reviewed")
    refused(msgworker("send", "release", str(drop), "--by", "carol"), "give either --state XX (release) or --cancel")
    refused(msgworker("send", "release", str(drop), "--state", "TX", "--cancel", "--by", "carol"), "not both")
    refused(msgworker("send", "release", str(drop), "--state", "XX", "--by", "carol"), "not a US state code")
    refused(msgworker("send", "release", "not-an-id", "--cancel", "--by", "carol"), "is not an outbox id")
    refused(msgworker("send", "held", "--station", "NOPE"), "no station with code")

    cancelled = msgworker("send", "release", str(drop), "--cancel", "--by", "carol", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    assert row(drop).gate_reason == "review_cancelled"

    empty = msgworker("send", "held")
    assert (empty.returncode, empty.stdout.strip()) == (0, "no texts held for review")
    assert fake_twilio.sent_to(numbers[0]) == fake_twilio.sent_to(numbers[1]) == []
