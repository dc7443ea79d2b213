"""`msgworker campaign start --wait` as a real process, with a real worker and beat and the fake Twilio.

The progress it shows counts messages decided and messages sent (recipient states read from the
outbox), never rows fetched: a recipient opted out before the run is decided but never sent.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from tests.factories import make_station
from tests.support import processes
from tests.support.campaigns import ACTOR, audience, opt_out, pool_with_codes
from tests.support.numbers import numbers_lawful_now
from tests.support.processes import VENV_BIN, Proc
from worker.campaigns import definitions
from worker.campaigns.schedules import ScheduleInput
from worker.db import session_scope
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e

ENV = {"CAMPAIGN_FANOUT_CHUNK": "4", "OUTBOUND_RATE_LIMIT_ENABLED": "false"}


@pytest.fixture
def stack(clean_db: str, clean_redis: redis.Redis, proc_dir: Path, fake_twilio: FakeTwilio) -> Iterator[list[Proc]]:
    started = [processes.start_worker(proc_dir, concurrency=2, env=ENV), processes.start_beat(proc_dir, env=ENV)]
    yield started
    for proc in started:
        proc.stop()


def test_start_wait_shows_messages_decided_and_sent_until_the_campaign_completes(
    stack: list[Proc], fake_twilio: FakeTwilio
) -> None:
    """12 recipients, one opted out: the bars end at decided 12/12 and sent 11/12, the last line says completed."""
    numbers = numbers_lawful_now(12, minutes=30)
    now = datetime.now(UTC)
    with session_scope() as s:
        station = make_station(s)
        audience(s, station, numbers)
        opt_out(s, numbers[3])
        pool = pool_with_codes(s, 12, station=station)
        campaign = definitions.create_campaign(s, definitions.CampaignSpec(
            kind="coupon", name="wait", station_code=station.code, template="{brand}: {coupon_code} is yours",
            schedule=ScheduleInput(at=now + timedelta(seconds=10)), pool_id=pool), ACTOR, now=now)
        campaign_id = str(campaign.id)
    done = subprocess.run(
        [str(VENV_BIN / "msgworker"), "campaign", "start", campaign_id, "--wait", "--timeout", "120", "--by", "amy"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"^decided\b.*\b12/12\b", out, re.MULTILINE), out
    assert re.search(r"^sent\b.*\b11/12\b", out, re.MULTILINE), out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"campaign {campaign_id}: completed; "), out
    assert "cancelled 1" in last
    assert "sent 11" in last or "delivered 11" in last
    assert len({m["to"] for m in fake_twilio.messages}) == 11
    assert numbers[3] not in {m["to"] for m in fake_twilio.messages}
