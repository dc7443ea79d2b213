"""Outbound end to end: outbox row -> beat release -> celery send task -> fake Twilio -> signed callback -> receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support import processes
from tests.support.processes import Proc, wait_for
from tests.support.webhooks import PUBLIC_BASE
from worker.db import session_scope
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e


def status_of(message_id: object) -> tuple[str, str | None, str | None]:
    with session_scope() as s:
        row = s.execute(
            text("SELECT status, delivery_status, provider_sid FROM core.outbound_messages WHERE id = :id"),
            {"id": message_id},
        ).one()
        return row.status, row.delivery_status, row.provider_sid


def test_enqueued_text_is_sent_by_the_worker_and_delivered(
    fake_twilio: FakeTwilio, receiver: str, worker_proc: Proc, proc_dir: Path
) -> None:
    """A queued transactional text goes out through beat + worker and ends 'delivered' from Twilio's callbacks."""
    fake_twilio.auto_callbacks = ("sent", "delivered")
    fake_twilio.route_callbacks(PUBLIC_BASE, receiver)
    beat = processes.start_beat(proc_dir)
    try:
        to = phone()
        with session_scope() as s:
            station = make_station(s)
            make_booking(s, make_customer(s, station, phone_e164=to))
            mid = enqueue(
                s, station=station, to=to, body="Your chef arrives at 6pm", purpose="transactional",
                idempotency_key="e2e-pipeline-1",
            ).message.id
        wait_for(lambda: status_of(mid)[0] == "delivered", timeout=45, what="row delivered", log=worker_proc.log_path)
        _, delivery, sid = status_of(mid)
        assert delivery == "delivered"
        [created] = fake_twilio.sent_to(to)
        assert created["sid"] == sid
    finally:
        beat.stop()
