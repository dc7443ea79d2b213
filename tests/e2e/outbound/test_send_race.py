"""The opt-out race, with real processes: a STOP webhook against a burst of marketing sends, 200 rounds.

The property (issue 5): the fake Twilio never receives a message whose gate decision was
committed after the opt-out was committed.

How "committed after" is witnessed independently of the locking under test: the decision's
UPDATE is its transaction's last statement and stores ``pg_current_snapshot()``; the
opt-out's transaction id is the ``xmin`` of its (append-only) consent_events row. If the
opt-out transaction is visible in the decision's final snapshot, the opt-out had committed
before the decision committed. So every text Twilio received must have a snapshot in which
the opt-out is *not* visible, and (as a check that the witness works) every send blocked as
opted-out must have one in which it *is*.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.factories import make_station, station_number
from tests.support import processes
from tests.support.numbers import numbers_lawful_now
from tests.support.processes import wait_for
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs
from worker.consent.ledger import record_event
from worker.db import session_scope
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e

ROUNDS = 200
BURST = 5
PARALLEL_ROUNDS = 16
# Pacing and the 3-per-24h marketing cap would only thin the bursts; this test is about the opt-out.
ENV = {"OUTBOUND_RATE_LIMIT_ENABLED": "false", "OUTBOUND_MARKETING_CAP_PER_24H": "100"}

# The opt-out's transaction id as xid8 (xmin is a 32-bit xid; add the epoch of "now").
_WITNESS = text(
    """
    WITH cur AS (SELECT pg_current_xact_id()::text::numeric AS full_id),
    optouts AS (
      SELECT e.phone_index, (
        (floor(cur.full_id / 4294967296)
         - CASE WHEN e.xmin::text::numeric > mod(cur.full_id, 4294967296) THEN 1 ELSE 0 END) * 4294967296
        + e.xmin::text::numeric)::text::xid8 AS xid
      FROM compliance.consent_events e, cur
      WHERE e.kind = 'opt_out')
    SELECT o.id, o.body, o.status, o.gate_decision, o.gate_reason, o.provider_sid,
           pg_visible_in_snapshot(x.xid, (o.gate_basis->>'snapshot')::pg_snapshot) AS saw_opt_out
    FROM core.outbound_messages o JOIN optouts x ON x.phone_index = o.to_index
    WHERE o.idempotency_key LIKE 'race-%' AND o.gate_basis ? 'snapshot'
    """
)


def scalar(sql: str, **params: object) -> int:
    with session_scope() as s:
        return int(s.execute(text(sql), params).scalar_one())


def settled() -> bool:
    unsettled = scalar(
        "SELECT count(*) FROM core.outbound_messages "
        "WHERE status IN ('pending', 'queued', 'sending', 'unknown', 'deferred')"
    )
    inbox_pending = scalar("SELECT count(*) FROM core.webhook_inbox WHERE status = 'pending'")
    confirmations = scalar(
        "SELECT count(*) FROM core.outbound_messages WHERE purpose = 'compliance' AND status IN ('sent','delivered')"
    )
    return unsettled == 0 and inbox_pending == 0 and confirmations == ROUNDS


def test_stop_racing_a_marketing_burst_never_lets_a_later_decision_through(
    fake_twilio: FakeTwilio, receiver: str, clean_db: str, clean_redis: object, proc_dir: Path
) -> None:
    """200 rounds of STOP vs. 5 marketing sends: every text Twilio got was decided before the opt-out committed."""
    worker = processes.start_worker(proc_dir, concurrency=4, env=ENV)
    beat = processes.start_beat(proc_dir, env=ENV)
    try:
        station_to = station_number()
        with session_scope() as s:
            station_id = make_station(s, sms_number=station_to).id
        numbers = numbers_lawful_now(ROUNDS, minutes=30)
        with session_scope() as s:
            for number in numbers:
                record_event(
                    s,
                    phone_e164=number,
                    kind="marketing_consent",
                    purpose="marketing",
                    source="web_form",
                    evidence={"disclosure": "race test v1"},
                    occurred_at=datetime.now(UTC),
                )
        rng = random.Random(20260505)
        # Each round enqueues its burst over ~2.5 s (one send every 0.5 s; the release tick runs every
        # second) and posts the STOP at a random moment in that span, so sends are decided before,
        # during and after the opt-out.
        stop_at = [rng.uniform(0.8, 2.4) for _ in range(ROUNDS)]

        def post_stop(number: str) -> int:
            raw, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=number, to=station_to, body="STOP"))
            return httpx.post(receiver + SMS_PATH, content=raw, headers=headers, timeout=15).status_code

        def play(i: int) -> int:
            number = numbers[i]
            start = time.monotonic()
            code = 0
            for k in range(BURST):
                if not code and time.monotonic() - start >= stop_at[i]:
                    code = post_stop(number)
                with session_scope() as s:
                    enqueue(
                        s,
                        station_id=station_id,
                        to=number,
                        body=f"Weekend deal {i}-{k}: 10% off hibachi for 10+",
                        purpose="marketing",
                        idempotency_key=f"race-{i}-{k}",
                    )
                time.sleep(0.5)
            return code or post_stop(number)

        with ThreadPoolExecutor(PARALLEL_ROUNDS) as pool:
            codes = list(pool.map(play, range(ROUNDS)))
        assert codes == [200] * ROUNDS
        wait_for(settled, timeout=240, interval=0.5, what="all sends and STOPs settled", log=worker.log_path)
    finally:
        beat.stop()
        worker.stop()

    with session_scope() as s:
        rows = s.execute(_WITNESS).all()
        opt_outs = scalar("SELECT count(*) FROM compliance.consent_events WHERE kind = 'opt_out'")
        race_rows = scalar("SELECT count(*) FROM core.outbound_messages WHERE idempotency_key LIKE 'race-%'")
    assert opt_outs == ROUNDS
    assert race_rows == ROUNDS * BURST

    received = [m for m in fake_twilio.messages if m["body"].startswith("Weekend deal")]
    by_body = {r.body: r for r in rows}
    late = [m["body"] for m in received if by_body[m["body"]].saw_opt_out]
    assert late == [], f"texts decided after the opt-out committed reached Twilio: {late[:5]}"
    # Every received text is a row decided 'allowed' with that sid; no body twice.
    assert all(by_body[m["body"]].gate_decision == "allowed" for m in received)
    assert all(by_body[m["body"]].provider_sid == m["sid"] for m in received)
    assert max(Counter(m["body"] for m in received).values(), default=0) <= 1

    # The witness works: sends the gate blocked as opted out did see the opt-out.
    blocked = [r for r in rows if r.status == "blocked"]
    assert [r.gate_reason for r in blocked if r.gate_reason != "opted_out"] == []
    assert all(r.saw_opt_out for r in blocked)

    # One confirmation per number, and nothing else went out after it for any decision made later.
    confirmations = Counter(m["to"] for m in fake_twilio.messages if not m["body"].startswith("Weekend deal"))
    assert sorted(confirmations) == sorted(numbers)
    assert set(confirmations.values()) == {1}

    # Non-vacuous: the STOPs really raced the bursts.
    sent_rounds = {m["body"].split()[2].split("-")[0] for m in received}
    stopped = [r for r in rows if r.status == "blocked"]
    cancelled = scalar(
        "SELECT count(*) FROM core.outbound_messages WHERE idempotency_key LIKE 'race-%' AND status = 'cancelled'"
    )
    mixed = {b.body.split()[2].split("-")[0] for b in stopped} & sent_rounds
    print(  # the test's own evidence, shown with -s
        f"race: {len(received)} sent, {len(stopped)} blocked at decision, {cancelled} cancelled in the outbox, "
        f"{len(mixed)} rounds with both sent and blocked decisions"
    )
    assert received, "no marketing text went out: the race was never run"
    assert stopped, "no send was decided after an opt-out: the race was never run"
    assert len(received) + len(stopped) + cancelled == ROUNDS * BURST
