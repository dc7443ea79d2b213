"""Campaigns end to end: real celery worker and beat processes, the fake Twilio, real Postgres and Redis.

Each test runs a 1,000-recipient coupon campaign (numbers inside their sending window now, each
with marketing consent) and checks what reached Twilio: every recipient exactly once, however
the run was disturbed (two beats and extra overlapping ticks, a pause at ~40%, a SIGKILL of the
worker in the middle of the fan-out, a STOP mid-campaign).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text

from tests.factories import make_customer, make_station
from tests.support import processes
from tests.support.campaigns import ACTOR, audience, pool_with_codes
from tests.support.numbers import numbers_lawful_now
from tests.support.processes import Proc, wait_for
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs
from worker.app import app
from worker.campaigns import definitions, lifecycle, recipients
from worker.campaigns.schedules import ScheduleInput
from worker.db import session_scope
from worker.models import Station
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e

TOTAL = 1000
ENV = {"CAMPAIGN_FANOUT_CHUNK": "50", "OUTBOUND_RATE_LIMIT_ENABLED": "false", "OUTBOUND_QUEUED_STALE_SECONDS": "5"}


@dataclass
class Run:
    campaign_id: uuid.UUID
    numbers: list[str]
    station_number: str
    station_id: uuid.UUID


def setup_campaign(count: int = TOTAL, *, rate: float | None = None, seconds_ahead: float = 3.0) -> Run:
    numbers = numbers_lawful_now(count, minutes=30)
    now = datetime.now(UTC)
    with session_scope() as s:
        station = make_station(s)
        if rate is not None:
            s.execute(text("UPDATE identity.station_senders SET rate_per_second = :r WHERE station_id = :s"),
                      {"r": rate, "s": station.id})
        audience(s, station, numbers)
        pool = pool_with_codes(s, count, station=station)
        campaign = definitions.create_campaign(s, definitions.CampaignSpec(
            kind="coupon", name="e2e", station_code=station.code, template="{brand}: {coupon_code} is yours",
            schedule=ScheduleInput(at=now + timedelta(seconds=seconds_ahead)), pool_id=pool), ACTOR, now=now)
        lifecycle.start(s, campaign.id, ACTOR, now=now)
        sender = s.execute(text("SELECT address FROM identity.station_senders WHERE station_id = :s"),
                           {"s": station.id}).scalar_one()
        return Run(campaign.id, numbers, sender, station.id)


def counts(campaign_id: uuid.UUID) -> recipients.StatusCounts:
    with session_scope() as s:
        return recipients.status_counts(s, campaign_id)


def outbox_duplicates(campaign_id: uuid.UUID) -> tuple[int, int, int]:
    """(outbox rows of the campaign, distinct numbers among them, distinct keys)."""
    with session_scope() as s:
        row = s.execute(text("SELECT count(*), count(DISTINCT to_index), count(DISTINCT idempotency_key) "
                             "FROM core.outbound_messages WHERE campaign_id = :c"), {"c": campaign_id}).one()
        return int(row[0]), int(row[1]), int(row[2])


def texts_per_number(fake: FakeTwilio) -> Counter[str]:
    return Counter(m["to"] for m in fake.messages)


@pytest.fixture
def stack(clean_db: str, clean_redis: redis.Redis, proc_dir: Path, fake_twilio: FakeTwilio) -> Iterator[list[Proc]]:
    """Whatever the test starts, stopped afterwards."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def test_two_beats_and_overlapping_ticks_send_each_recipient_once(
    stack: list[Proc], proc_dir: Path, fake_twilio: FakeTwilio
) -> None:
    """Two beats and 20 extra ticks at once: 1,000 outbox rows, 999 texts, none twice; a 21610 (a
    carrier opt-out: that row blocked) and an invalid number (skipped) affect only their own recipient."""
    run = setup_campaign()
    refused = run.numbers[7]
    fake_twilio.fail_number(refused, error_code=21610)
    with session_scope() as s:
        station = s.get(Station, run.station_id)
        assert station is not None
        make_customer(s, station, phone_e164="+999123")  # no such country code: cannot be texted
    stack.append(processes.start_worker(proc_dir, concurrency=4, env=ENV))
    stack.append(processes.start_beat(proc_dir / "beat1", env=ENV))
    stack.append(processes.start_beat(proc_dir / "beat2", env=ENV))
    time.sleep(3.5)
    for _ in range(20):
        app.send_task("tasks.campaigns.tick")
    wait_for(lambda: counts(run.campaign_id).decided == TOTAL + 1, timeout=240, what="every row decided",
             log=stack[0].log_path)
    final = counts(run.campaign_id)
    assert final.total == TOTAL + 1
    assert final.by_state() == {"sent": TOTAL - 1, "blocked": 1, "skipped": 1}
    assert final.by_reason() == {"blocked:carrier_opt_out": 1, "skipped:invalid_number": 1}
    assert outbox_duplicates(run.campaign_id) == (TOTAL, TOTAL, TOTAL)
    per_number = texts_per_number(fake_twilio)
    assert len(per_number) == TOTAL - 1
    assert set(per_number.values()) == {1}
    assert refused not in per_number
    wait_for(lambda: _status(run.campaign_id) == "completed", timeout=30, what="campaign completed")


def _status(campaign_id: uuid.UUID) -> str:
    with session_scope() as s:
        return str(s.execute(text("SELECT status FROM marketing.campaigns WHERE id = :c"), {"c": campaign_id}
                             ).scalar_one())


def test_pause_at_forty_percent_then_resume_sends_each_recipient_once(
    stack: list[Proc], proc_dir: Path, fake_twilio: FakeTwilio
) -> None:
    """Paused at ~400 texts, nothing more goes (beyond texts already claimed by a send task); resumed, all
    1,000 go, each once."""
    env = {**ENV, "OUTBOUND_RATE_LIMIT_ENABLED": "true"}
    run = setup_campaign(rate=60)
    stack.append(processes.start_worker(proc_dir, concurrency=4, env=env))
    stack.append(processes.start_beat(proc_dir, env=env))
    wait_for(lambda: len(fake_twilio.messages) >= TOTAL * 0.4, timeout=120, what="40% sent", log=stack[0].log_path)
    with session_scope() as s:
        lifecycle.pause(s, run.campaign_id, ACTOR, now=datetime.now(UTC))
    time.sleep(3)
    at_pause = len(fake_twilio.messages)
    time.sleep(6)
    assert len(fake_twilio.messages) == at_pause, "texts went out while paused"
    assert at_pause < TOTAL
    with session_scope() as s:
        lifecycle.resume(s, run.campaign_id, ACTOR, now=datetime.now(UTC))
    wait_for(lambda: counts(run.campaign_id).sent == TOTAL, timeout=240, what="all sent", log=stack[0].log_path)
    per_number = texts_per_number(fake_twilio)
    assert len(per_number) == TOTAL
    assert set(per_number.values()) == {1}
    assert outbox_duplicates(run.campaign_id) == (TOTAL, TOTAL, TOTAL)


def test_sigkill_during_fan_out_then_restart_loses_nothing_and_doubles_nothing(
    stack: list[Proc], proc_dir: Path, fake_twilio: FakeTwilio
) -> None:
    """The worker is SIGKILLed while the fan-out is half done; after a restart every recipient gets one text."""
    env = {**ENV, "CAMPAIGN_FANOUT_CHUNK": "20"}
    run = setup_campaign(seconds_ahead=6)
    beat = processes.start_beat(proc_dir, env=env)
    stack.append(beat)
    worker = processes.start_worker(proc_dir, concurrency=2, env=env, name="worker1")
    stack.append(worker)

    def queued() -> int:
        with session_scope() as s:
            return int(s.execute(text("SELECT count(*) FROM marketing.campaign_recipients WHERE campaign_id = :c "
                                      "AND status = 'queued'"), {"c": run.campaign_id}).scalar_one())

    wait_for(lambda: queued() >= 100, timeout=120, interval=0.01, what="fan-out under way", log=worker.log_path)
    worker.kill()
    assert worker.popen is not None
    worker.popen.wait(timeout=10)
    at_kill = queued()
    assert at_kill < TOTAL, "the fan-out finished before the kill; nothing was tested"
    worker2 = processes.start_worker(proc_dir, concurrency=2, env=env, name="worker2")
    stack.append(worker2)
    wait_for(lambda: counts(run.campaign_id).sent == TOTAL, timeout=300, what="all sent", log=worker2.log_path)
    per_number = texts_per_number(fake_twilio)
    assert len(per_number) == TOTAL
    assert set(per_number.values()) == {1}
    assert outbox_duplicates(run.campaign_id) == (TOTAL, TOTAL, TOTAL)


def test_a_stop_mid_campaign_cancels_that_numbers_pending_rows(
    stack: list[Proc], proc_dir: Path, fake_twilio: FakeTwilio, receiver: str
) -> None:
    """A STOP through the receiver mid-run: the number's unsent text and its rows in a later campaign are
    cancelled, and nothing reaches it after the STOP but the one confirmation."""
    env = {**ENV, "OUTBOUND_RATE_LIMIT_ENABLED": "true"}
    run = setup_campaign(200, rate=10)
    later_at = datetime.now(UTC) + timedelta(days=2)
    with session_scope() as s:
        code = s.execute(text("SELECT code FROM identity.stations WHERE id = :i"), {"i": run.station_id}).scalar_one()
        later = definitions.create_campaign(s, definitions.CampaignSpec(
            kind="broadcast", name="later", station_code=code, template="{brand}: see you soon",
            schedule=ScheduleInput(local_time="10:00", on=later_at.date())), ACTOR, now=datetime.now(UTC))
        lifecycle.start(s, later.id, ACTOR, now=datetime.now(UTC))
    stack.append(processes.start_worker(proc_dir, concurrency=4, env=env))
    stack.append(processes.start_beat(proc_dir, env=env))
    wait_for(lambda: len(fake_twilio.messages) >= 20, timeout=120, what="campaign under way", log=stack[0].log_path)
    wait_for(lambda: counts(later.id).total == 200, timeout=60, what="later campaign expanded")
    sent_so_far = {m["to"] for m in fake_twilio.messages}
    target = next(n for n in reversed(run.numbers) if n not in sent_so_far)
    raw, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=target, to=run.station_number, body="STOP"))
    assert httpx.post(receiver + SMS_PATH, content=raw, headers=headers, timeout=10).status_code == 200

    def settled() -> bool:
        return ("cancelled:opted_out", 1) in counts(later.id).by_reason().items()

    wait_for(settled, timeout=60, what="the later campaign's row cancelled", log=stack[0].log_path)
    wait_for(lambda: counts(run.campaign_id).decided == 200, timeout=120, what="first campaign decided")
    first = counts(run.campaign_id)
    assert first.sent == 199
    assert first.by_state().get("cancelled") == 1
    to_target = [m["body"] for m in fake_twilio.sent_to(target)]
    assert len(to_target) == 1
    assert "unsubscribed" in to_target[0].lower()
