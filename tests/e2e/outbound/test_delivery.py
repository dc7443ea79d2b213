"""A 21610 reported after acceptance, end to end: outbox row -> beat -> celery send task -> fake
Twilio (201, then a signed ``undelivered`` callback with ErrorCode 21610) -> receiver -> worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support import processes
from tests.support.processes import Proc, wait_for
from tests.support.webhooks import PUBLIC_BASE
from worker import pii
from worker.db import session_scope
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e


def _carrier_opt_outs(number: str) -> list[tuple[str, dict[str, object]]]:
    with session_scope() as s:
        rows = s.execute(
            text("SELECT idempotency_key, evidence FROM compliance.consent_events "
                 "WHERE phone_index = :idx AND kind = 'carrier_opt_out' ORDER BY seq"),
            {"idx": pii.blind_index(number, kind="phone")},
        ).all()
    return [(r.idempotency_key, r.evidence) for r in rows]


def _status(message_id: object) -> tuple[str, str | None, int | None, str | None]:
    with session_scope() as s:
        row = s.execute(
            text("SELECT status, delivery_status, error_code, gate_reason FROM core.outbound_messages WHERE id = :id"),
            {"id": message_id},
        ).one()
    return row.status, row.delivery_status, row.error_code, row.gate_reason


def test_a_21610_in_a_status_callback_is_a_carrier_opt_out(
    fake_twilio: FakeTwilio, receiver: str, worker_proc: Proc, proc_dir: Path
) -> None:
    """Twilio accepts the text, then reports 21610 by callback: the worker records one carrier opt-out from
    the callback, cancels the number's queued text, and the next text to the number never reaches Twilio."""
    fake_twilio.auto_callbacks = ("sent", "delivered")  # the 21610 rule below ends it "undelivered" instead
    fake_twilio.route_callbacks(PUBLIC_BASE, receiver)
    to = phone()
    fake_twilio.fail_number(to, delivery_error=21610)
    beat = processes.start_beat(proc_dir)
    try:
        with session_scope() as s:
            station = make_station(s)
            make_booking(s, make_customer(s, station, phone_e164=to))
            first = enqueue(s, station=station, to=to, body="Your chef arrives at 6pm", purpose="transactional",
                            idempotency_key="e2e-21610-first").message.id
            later = enqueue(s, station=station, to=to, body="Reminder: party of 10 tomorrow", purpose="transactional",
                            idempotency_key="e2e-21610-later", not_before=datetime.now(UTC) + timedelta(seconds=30)
                            ).message.id
        wait_for(lambda: bool(_carrier_opt_outs(to)), timeout=45, what="carrier opt-out from the callback",
                 log=worker_proc.log_path)
        wait_for(lambda: _status(first)[1] == "undelivered", timeout=20, what="row undelivered",
                 log=worker_proc.log_path)
        assert _status(first) == ("undelivered", "undelivered", 21610, None)
        assert _status(later)[0] == "cancelled"
        [(key, evidence)] = _carrier_opt_outs(to)
        assert key.startswith("carrier-opt-out:")
        assert evidence["reported_via"] == "status_callback"
        assert evidence["error_code"] == 21610
        [sent] = fake_twilio.sent_to(to)
        assert evidence["provider_sid"] == sent["sid"]
        assert any(c.params.get("ErrorCode") == "21610" and c.status_code == 200 for c in fake_twilio.callbacks)
        # A new text to the number is refused by our own ledger, before Twilio.
        with session_scope() as s:
            again = enqueue(s, station_id=station.id, to=to, body="Your deposit receipt", purpose="transactional",
                            idempotency_key="e2e-21610-again").message.id
        wait_for(lambda: _status(again)[0] == "blocked", timeout=30, what="next text blocked",
                 log=worker_proc.log_path)
        assert _status(again)[3] == "opted_out"
        assert len(fake_twilio.sent_to(to)) == 1
        assert len(_carrier_opt_outs(to)) == 1
    finally:
        beat.stop()
