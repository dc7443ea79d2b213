"""No text after an acknowledged STOP, end to end (issue 16 point 2): the real receiver (uvicorn),
celery worker and beat, PostgreSQL, Redis and the fake Twilio over HTTP.

The STOP is answered 2xx while no worker runs, and its drain kick is lost with the broker (the
outage the sweeper exists for), so when the worker and beat come back the inbox is not drained
for several release ticks, while a marketing text to the number is due. The send gate reads the
pending inbox row (worker/outbound/facts.py) and defers the text tick after tick; when the
sweeper drains the STOP, the text is cancelled and only the confirmation goes out.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text

from tests.factories import make_station, station_number
from tests.support import processes
from tests.support.broker import drop_tasks
from tests.support.campaigns import grant_marketing
from tests.support.numbers import numbers_lawful_now
from tests.support.processes import wait_for
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs
from worker.db import session_scope
from worker.ingest.kick import DRAIN_TASK
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio
from worker.web.webhooks import EMPTY_TWIML

pytestmark = pytest.mark.e2e

# The sweeper (every 15 s) drains rows pending longer than this: well after several release ticks.
WORKER_ENV = {"INBOX_SWEEP_GRACE_SECONDS": "5"}


def _drop_drain_kicks(broker: redis.Redis) -> int:
    """Remove the drain tasks waiting in the broker's queue (lost with the broker, say); the count removed."""
    return drop_tasks(broker, DRAIN_TASK)


def _row(message_id: object) -> tuple[str, str | None]:
    with session_scope() as s:
        found = s.execute(
            text("SELECT status, gate_reason FROM core.outbound_messages WHERE id = :id"), {"id": message_id}
        ).one()
    return found.status, found.gate_reason


def _inbox_statuses() -> list[str]:
    with session_scope() as s:
        return list(s.execute(text("SELECT status FROM core.webhook_inbox")).scalars())


def test_a_stop_acknowledged_during_an_outage_holds_the_due_marketing_text(
    clean_db: str, clean_redis: redis.Redis, fake_twilio: FakeTwilio, receiver: str, proc_dir: Path
) -> None:
    """STOP answered 2xx with the worker down and its kick lost; a marketing text to the number is due. With
    the worker and beat back, the text is deferred (inbox_pending) until the sweeper drains the STOP, then
    cancelled as opted out: it never reaches Twilio, and the one confirmation does, once."""
    [number] = numbers_lawful_now(1)
    to = station_number()
    with session_scope() as s:
        station = make_station(s, sms_number=to)
        grant_marketing(s, number)
        marketing = enqueue(s, station=station, to=number, body="Weekend special: 20% off hibachi for 10",
                            purpose="marketing", idempotency_key="e2e-stop-outage").message.id  # fmt: skip
    raw, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=number, to=to, body="STOP"))
    answer = httpx.post(receiver + SMS_PATH, content=raw, headers=headers, timeout=10)
    assert (answer.status_code, answer.content) == (200, EMPTY_TWIML)
    wait_for(lambda: _drop_drain_kicks(clean_redis) > 0, timeout=5, what="the receiver's drain kick")
    assert _inbox_statuses() == ["pending"]

    worker = processes.start_worker(proc_dir, env=WORKER_ENV)
    beat = processes.start_beat(proc_dir, env=WORKER_ENV)
    try:
        wait_for(lambda: _row(marketing) == ("cancelled", "opted_out"), timeout=60,
                 what="the marketing text cancelled by the STOP", log=worker.log_path)  # fmt: skip

        def confirmations() -> list[str]:
            return [r.param("Body") or "" for r in fake_twilio.requests
                    if r.method == "POST" and r.status == 201 and r.param("To") == number]  # fmt: skip

        wait_for(lambda: len(confirmations()) == 1, timeout=30, what="the opt-out confirmation sent",
                 log=worker.log_path)  # fmt: skip
        deferrals = [line for line in worker.log().splitlines()
                     if "send_deferred" in line and str(marketing) in line and "inbox_pending" in line]  # fmt: skip
        beat.stop()  # nothing more is released; give anything already published time to land
        time.sleep(2.0)
        assert _inbox_statuses() == ["processed"]
    finally:
        beat.stop()
        worker.stop()
    assert deferrals, "the release ticks before the drain must have met the pending STOP"
    [body] = confirmations()
    assert "Weekend special" not in body
    assert _row(marketing) == ("cancelled", "opted_out")
