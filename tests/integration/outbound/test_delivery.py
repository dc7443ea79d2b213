"""Status callbacks that report a carrier opt-out (worker/outbound/delivery.py), through the real
ingest drain, and how they agree with the synchronous 21610 of the send path."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support.webhooks import new_sid, status_pairs
from worker import pii
from worker.consent.ledger import record_event
from worker.consent.state import covering_state
from worker.db import SessionScope
from worker.ingest.drain import load_items, process_items
from worker.models import ConsentEvent, DeliveryEvent, OutboundMessage, UndeliverableNumber, WebhookInbox
from worker.outbound.delivery import apply_pending_events
from worker.outbound.send import send_one
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio
from worker.settings import get_settings


def _station_and_number(session: Session) -> tuple[uuid.UUID, str]:
    station = make_station(session)
    number = phone()
    make_booking(session, make_customer(session, station, phone_e164=number))
    return station.id, number


def _row(session: Session, station_id: uuid.UUID, to: str, *, sid: str | None = None, **kw: Any) -> uuid.UUID:
    """An outbox row; with a sid, as the send path leaves an accepted text."""
    message = enqueue(session, station_id=station_id, to=to, body=f"Your chef arrives at 6pm ({uuid.uuid4().hex[:6]})",
                      purpose="transactional", idempotency_key=uuid.uuid4().hex, **kw).message
    if sid is not None:
        message.provider_sid, message.status, message.delivery_status = sid, "sent", "queued"
    session.flush()
    return message.id


def _callback(session: Session, sid: str, status: str, error_code: int | None = None, *, copy: str = "") -> None:
    """Store the callback in the webhook inbox as the receiver does, then drain it for real."""
    raw = urlencode(status_pairs(sid=sid, status=status, error_code=error_code))
    row = WebhookInbox(provider="twilio_status", provider_event_id="sha256:" + hashlib.sha256((raw + copy).encode())
                       .hexdigest(), content_type="application/x-www-form-urlencoded",
                       payload_encrypted=pii.encrypt(raw, kind="inbox"))
    session.add(row)
    session.flush()
    [result] = process_items(session, load_items(session, [row.id]))
    assert result.outcome == "processed", result.reason


def _carrier_events(session: Session, number: str) -> list[ConsentEvent]:
    return list(
        session.execute(
            select(ConsentEvent)
            .where(ConsentEvent.phone_index == pii.blind_index(number, kind="phone"),
                   ConsentEvent.kind == "carrier_opt_out")
            .order_by(ConsentEvent.seq)
        ).scalars()
    )


@pytest.mark.parametrize("status", ["failed", "undelivered"])
def test_a_21610_callback_records_one_carrier_opt_out(db_scope: SessionScope, status: str) -> None:
    """A failed or undelivered callback with 21610 records a carrier_opt_out (source: the callback),
    cancels the number's unsent rows and blocks later sends; the row follows the callback."""
    sid = new_sid()
    with db_scope() as s:
        station_id, number = _station_and_number(s)
        sent_id = _row(s, station_id, number, sid=sid)
        waiting_id = _row(s, station_id, number, not_before=datetime.now(UTC) + timedelta(hours=1))
    with db_scope() as s:
        _callback(s, sid, status, 21610)
    with db_scope() as s:
        [event] = _carrier_events(s, number)
        assert (event.source, event.purpose) == ("carrier_error", "all")
        assert event.evidence["error_code"] == 21610
        assert event.evidence["reported_via"] == "status_callback"
        assert event.evidence["provider_sid"] == sid
        assert event.evidence["provider_ref"] == f"outbound:{sent_id}"
        index = pii.blind_index(number, kind="phone")
        assert covering_state(s, index, station_id).opted_out
        sent = s.get(OutboundMessage, sent_id)
        waiting = s.get(OutboundMessage, waiting_id)
        assert sent is not None
        assert waiting is not None
        assert (sent.status, sent.delivery_status, sent.error_code) == (status, status, 21610)
        assert (waiting.status, waiting.gate_reason) == ("cancelled", "opted_out")
        # As on the synchronous path: an opt-out is not a dead number, so nothing is marked undeliverable.
        assert s.get(UndeliverableNumber, index) is None


def test_more_21610_callbacks_for_the_number_record_nothing_new(db_scope: SessionScope) -> None:
    """Other codes and non-error statuses record nothing; after a 21610, the same callback again, the
    other error status of that text and a 21610 for another accepted text land on the one event."""
    first, second, third = new_sid(), new_sid(), new_sid()
    with db_scope() as s:
        station_id, number = _station_and_number(s)
        _row(s, station_id, number, sid=first)
        _row(s, station_id, number, sid=second)
        _row(s, station_id, number, sid=third)
    with db_scope() as s:
        _callback(s, third, "undelivered", 30003)
        _callback(s, second, "sent", 21610)
    with db_scope() as s:
        assert _carrier_events(s, number) == []
        _callback(s, first, "failed", 21610)
    with db_scope() as s:
        _callback(s, first, "failed", 21610, copy="redelivered")
        _callback(s, first, "undelivered", 21610)
        _callback(s, second, "failed", 21610)
    with db_scope() as s:
        assert len(_carrier_events(s, number)) == 1
        assert s.execute(select(DeliveryEvent.status).where(DeliveryEvent.provider_sid == first)).scalars().all()


def test_a_21610_after_a_start_is_recorded_again(db_scope: SessionScope) -> None:
    """Once per opt-out, not once ever: after the person texts START, a new 21610 callback is a new opt-out."""
    first, second = new_sid(), new_sid()
    with db_scope() as s:
        station_id, number = _station_and_number(s)
        _row(s, station_id, number, sid=first)
        _row(s, station_id, number, sid=second)
    with db_scope() as s:
        _callback(s, first, "failed", 21610)
    with db_scope() as s:
        record_event(s, phone_e164=number, kind="opt_in", purpose="all", source="sms_keyword",
                     evidence={"body": "START"}, occurred_at=datetime.now(UTC), station_id=None)
        assert not covering_state(s, pii.blind_index(number, kind="phone"), station_id).opted_out
    with db_scope() as s:
        _callback(s, second, "failed", 21610)
    with db_scope() as s:
        events = _carrier_events(s, number)
        assert len(events) == 2
        assert events[0].idempotency_key != events[1].idempotency_key
        assert covering_state(s, pii.blind_index(number, kind="phone"), station_id).opted_out


def test_a_21610_callback_that_beats_the_sid_is_recorded_by_the_send_path(db_scope: SessionScope) -> None:
    """A 21610 callback stored before its sid was committed is recorded when the send path attaches it."""
    sid = new_sid()
    with db_scope() as s:
        station_id, number = _station_and_number(s)
        row_id = _row(s, station_id, number)
    with db_scope() as s:
        _callback(s, sid, "failed", 21610)
    with db_scope() as s:
        assert _carrier_events(s, number) == []
        msg = s.get(OutboundMessage, row_id)
        assert msg is not None
        msg.provider_sid, msg.status = sid, "sent"
        assert apply_pending_events(s, msg) == 1
    with db_scope() as s:
        [event] = _carrier_events(s, number)
        assert event.evidence["reported_via"] == "status_callback"


@pytest.fixture
def fake(clean_redis: Any, fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


def test_the_send_path_and_a_callback_record_one_opt_out_between_them(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """A refused create (21610, HTTP 400) records the opt-out; a 21610 callback for a text accepted
    earlier then adds nothing."""
    earlier = new_sid()
    with db_scope() as s:
        station_id, number = _station_and_number(s)
        _row(s, station_id, number, sid=earlier)
        refused = _row(s, station_id, number)
    fake.fail_number(number, error_code=21610)
    settings = get_settings().model_copy(update={"OUTBOUND_RATE_LIMIT_ENABLED": False})
    result = send_one(refused, settings=settings, scope=db_scope)
    assert (result.status, result.reason) == ("blocked", "carrier_opt_out")
    with db_scope() as s:
        _callback(s, earlier, "failed", 21610)
    with db_scope() as s:
        [event] = _carrier_events(s, number)
        assert event.evidence["reported_via"] == "send_response"
