"""SIGKILL the worker in the middle of 1,000 sends, restart it: every text reaches Twilio exactly once.

Rows the dead worker left "queued" are re-published by the release tick; rows it left
"sending" (decision committed, Twilio's answer never recorded) are looked up at Twilio by the
reconciler: found -> recorded as sent, absent -> requeued and sent once. Nothing is resent
blindly, so the fake Twilio must hold exactly one message per row.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support import processes
from tests.support.processes import wait_for
from worker.db import session_scope
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e

TOTAL = 1000
CUSTOMERS = 50
ENV = {
    "OUTBOUND_RATE_LIMIT_ENABLED": "false",
    "OUTBOUND_SENDING_STALE_SECONDS": "5",
    "OUTBOUND_RECONCILE_ABSENT_SECONDS": "5",
    "OUTBOUND_QUEUED_STALE_SECONDS": "5",
}


def counts() -> dict[str, int]:
    with session_scope() as s:
        return {
            r.status: int(r.n)
            for r in s.execute(text("SELECT status, count(*) AS n FROM core.outbound_messages GROUP BY status"))
        }


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    fake_twilio: FakeTwilio, clean_db: str, clean_redis: object, proc_dir: Path
) -> None:
    """1,000 sends, worker SIGKILLed after ~300, restarted: 1,000 texts at Twilio, each once, all rows sent."""
    # Slow Twilio down a little (accepted, then 30 ms before the answer) so sends are in flight at the kill.
    fake_twilio.fail_next(TOTAL * 2, hang_seconds=0.03, after_accept=True)
    with session_scope() as s:
        station = make_station(s)
        numbers = [phone() for _ in range(CUSTOMERS)]
        for n in numbers:
            make_booking(s, make_customer(s, station, phone_e164=n))
        for i in range(TOTAL):
            enqueue(
                s,
                station=station,
                to=numbers[i % CUSTOMERS],
                body=f"Crash test reminder #{i}: your party is confirmed",
                purpose="transactional",
                idempotency_key=f"crash-{i}",
            )

    beat = processes.start_beat(proc_dir, env=ENV)
    worker = processes.start_worker(proc_dir, concurrency=4, env=ENV, name="worker1")
    try:
        wait_for(lambda: len(fake_twilio.messages) >= 300, timeout=120, what="300 texts at Twilio", log=worker.log_path)
        worker.kill()  # SIGKILL to the whole process group: the pool children die mid-send
        assert worker.popen is not None
        worker.popen.wait(timeout=10)
        at_kill = counts()
        in_flight = at_kill.get("sending", 0) + at_kill.get("queued", 0)
        assert at_kill.get("sent", 0) < TOTAL
        time.sleep(1)
        worker = processes.start_worker(proc_dir, concurrency=4, env=ENV, name="worker2")
        wait_for(
            lambda: counts().get("sent", 0) == TOTAL,
            timeout=240,
            interval=0.5,
            what="all 1,000 rows sent",
            log=worker.log_path,
        )
    finally:
        worker.stop()
        beat.stop()

    received = [m for m in fake_twilio.messages if m["body"].startswith("Crash test")]
    per_text = Counter((m["to"], m["body"]) for m in received)
    assert len(per_text) == TOTAL, "lost texts"
    assert max(per_text.values()) == 1, [k for k, v in per_text.items() if v > 1][:5]
    with session_scope() as s:
        rows = {
            r.body: r.provider_sid for r in s.execute(text("SELECT body, provider_sid FROM core.outbound_messages"))
        }
        outcomes = {
            r.outcome: int(r.n)
            for r in s.execute(text("SELECT outcome, count(*) AS n FROM core.send_attempts GROUP BY outcome"))
        }
    assert all(rows[m["body"]] == m["sid"] for m in received)
    print(  # the test's evidence, shown with -s
        f"crash: at kill {at_kill}; attempts {outcomes}"
    )
    assert in_flight > 0, "nothing was in flight at the kill: the crash was not mid-batch"
    assert counts() == {"sent": TOTAL}
