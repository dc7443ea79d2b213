"""The send path (worker.outbound: send, reconcile, release): real database, fake Twilio over HTTP."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.factories import make_booking, make_customer, make_station, phone
from worker import pii
from worker.after_commit import pending_tasks
from worker.consent.effects import cancel_after_opt_out, queue_opt_out_confirmation
from worker.consent.ledger import record_event
from worker.db import get_sessionmaker, session_scope
from worker.models import (
    ConsentEvent,
    ConsentState,
    OutboundMessage,
    SendAttempt,
    Station,
    StationSender,
    UndeliverableNumber,
)
from worker.outbound.reconcile import reconcile_due
from worker.outbound.release import release_due
from worker.outbound.send import decide, send_batch, send_one
from worker.outbox import enqueue
from worker.provider.client import make_client, send_sms
from worker.provider.fake import FakeTwilio
from worker.settings import Settings, get_settings

LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def fake(clean_db: str, clean_redis: Any, fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


def settings_with(**overrides: Any) -> Settings:
    """This run's settings with overrides; rate limiting off unless a test turns it on."""
    base: dict[str, Any] = {"OUTBOUND_RATE_LIMIT_ENABLED": False}
    base.update(overrides)
    return get_settings().model_copy(update=base)


def noon_la() -> datetime:
    """Today's noon in Los Angeles (the factory numbers are 415): inside every window."""
    return datetime.now(LA).replace(hour=12, minute=0, second=0, microsecond=0)


def setup_station(*, messaging_service_sid: str | None = None) -> tuple[uuid.UUID, str]:
    with session_scope() as s:
        st = make_station(s, messaging_service_sid=messaging_service_sid)
        sender = s.execute(select(StationSender.address).where(StationSender.station_id == st.id)).scalar_one()
        return st.id, sender


def customer_with_booking(station_id: uuid.UUID, number: str | None = None) -> str:
    number = number or phone()
    with session_scope() as s:
        st = s.get(Station, station_id)
        assert st is not None
        make_booking(s, make_customer(s, st, phone_e164=number))
    return number


def add_consent(station_id: uuid.UUID | None, number: str, kind: str = "marketing_consent") -> uuid.UUID:
    with session_scope() as s:
        result = record_event(
            s,
            phone_e164=number,
            kind=kind,
            purpose="marketing" if kind.startswith("marketing") else "all",
            source="web_form",
            evidence={"disclosure": "test disclosure v1"},
            occurred_at=datetime.now(UTC),
            station_id=station_id,
        )
        return result.event.id


def put(
    station_id: uuid.UUID, to: str, *, purpose: str = "transactional", body: str | None = None, **kw: Any
) -> uuid.UUID:
    with session_scope() as s:
        return enqueue(
            s,
            station_id=station_id,
            to=to,
            body=body or f"Your booking is confirmed ({uuid.uuid4().hex[:8]})",
            purpose=purpose,
            idempotency_key=kw.pop("key", uuid.uuid4().hex),
            **kw,
        ).message.id


def row(message_id: uuid.UUID) -> OutboundMessage:
    with session_scope() as s:
        msg = s.get(OutboundMessage, message_id)
        assert msg is not None
        s.expunge(msg)
        return msg


def attempts(message_id: uuid.UUID) -> list[SendAttempt]:
    with session_scope() as s:
        found = list(
            s.execute(
                select(SendAttempt).where(SendAttempt.outbound_id == message_id).order_by(SendAttempt.started_at)
            ).scalars()
        )
        s.expunge_all()
        return found


@contextmanager
def rolled_back() -> Iterator[Session]:
    """A session whose work is rolled back at the end: nothing committed, nothing published."""
    session = get_sessionmaker()()
    session.begin()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def backdate_attempts(message_id: uuid.UUID, *, seconds: int) -> None:
    """Pretend the row's attempts began ``seconds`` ago (instead of sleeping through the absent delay)."""
    with session_scope() as s:
        s.execute(
            text("UPDATE core.send_attempts SET started_at = started_at - make_interval(secs => :s) "
                 "WHERE outbound_id = :id"),
            {"id": message_id, "s": seconds},
        )


def make_due(message_id: uuid.UUID) -> None:
    with session_scope() as s:
        s.execute(
            text("UPDATE core.outbound_messages SET not_before = now() - interval '1 second' WHERE id = :id"),
            {"id": message_id},
        )


def test_allowed_transactional_send_records_the_sid_and_the_decision(fake: FakeTwilio) -> None:
    """A transactional text to a customer with a booking is sent once, with callback URL and validity period."""
    station_id, sender = setup_station()
    to = customer_with_booking(station_id)
    mid = put(station_id, to)

    result = send_one(mid, task_id="task-1", settings=settings_with())

    assert result.status == "sent"
    msg = row(mid)
    assert msg.status == "sent"
    assert msg.provider_sid == result.provider_sid
    assert msg.gate_decision == "allowed"
    assert msg.decided_at is not None
    assert msg.gate_basis is not None
    assert "relationship" in msg.gate_basis["rules"]
    assert msg.gate_basis["snapshot"]  # the transactions the decision could see
    [created] = fake.sent_to(to)
    assert created["sid"] == msg.provider_sid
    params = fake.create_params(created["sid"])
    assert params["StatusCallback"] == ["https://hooks.example.test/webhooks/twilio/status"]
    assert params["ValidityPeriod"] == [str(get_settings().TWILIO_VALIDITY_PERIOD)]
    assert params["From"] == [sender]
    [attempt] = attempts(mid)
    assert (attempt.outcome, attempt.provider_sid, attempt.task_id) == ("accepted", msg.provider_sid, "task-1")


def test_messaging_service_sender_sends_through_the_service(fake: FakeTwilio) -> None:
    """A sender with a Messaging Service SID sends with MessagingServiceSid and no From."""
    station_id, _ = setup_station(messaging_service_sid="MG" + "a" * 32)
    to = customer_with_booking(station_id)
    mid = put(station_id, to)
    assert send_one(mid, settings=settings_with()).status == "sent"
    params = fake.create_params(fake.sent_to(to)[0]["sid"])
    assert params["MessagingServiceSid"] == ["MG" + "a" * 32]
    assert "From" not in params


def test_blocked_send_never_reaches_twilio(fake: FakeTwilio) -> None:
    """Marketing without written consent is blocked with its reason; Twilio hears nothing."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    mid = put(station_id, to, purpose="marketing")
    result = send_one(mid, now=noon_la(), settings=settings_with())
    assert (result.status, result.reason) == ("blocked", "no_marketing_consent")
    assert row(mid).gate_reason == "no_marketing_consent"
    assert fake.sent_to(to) == []
    assert attempts(mid) == []


def test_marketing_with_consent_at_night_is_deferred_to_the_morning(fake: FakeTwilio) -> None:
    """At 23:30 recipient time, marketing waits in the outbox until 09:00 local (California's start,
    docs/compliance.md#state-windows); the release tick leaves it there."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    consent_id = add_consent(None, to)
    mid = put(station_id, to, purpose="marketing")
    late = datetime.now(LA).replace(hour=23, minute=30, second=0, microsecond=0)

    result = send_one(mid, now=late, settings=settings_with())

    assert (result.status, result.reason) == ("deferred", "quiet_hours")
    msg = row(mid)
    assert msg.not_before == (late + timedelta(days=1)).replace(hour=9, minute=0)
    assert msg.gate_basis is not None
    assert str(consent_id) in msg.gate_basis["events"]
    with session_scope() as s:
        assert mid not in release_due(s, settings=settings_with())
    assert fake.sent_to(to) == []


def test_marketing_with_consent_at_noon_is_sent(fake: FakeTwilio) -> None:
    """Written consent on record and a lawful hour: the marketing text goes, its basis naming the consent."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    consent_id = add_consent(station_id, to)
    mid = put(station_id, to, purpose="marketing")
    assert send_one(mid, now=noon_la(), settings=settings_with()).status == "sent"
    basis = row(mid).gate_basis
    assert basis is not None
    assert basis["events"][0] == str(consent_id)
    assert len(fake.sent_to(to)) == 1


def test_21610_blocks_and_records_a_carrier_opt_out(fake: FakeTwilio) -> None:
    """Twilio's 21610 marks the row blocked and appends a carrier opt-out to the ledger; queued rows are cancelled."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, error_code=21610)
    mid = put(station_id, to)
    waiting = put(station_id, to, not_before=datetime.now(UTC) + timedelta(hours=1))

    result = send_one(mid, settings=settings_with())

    assert (result.status, result.reason, result.error_code) == ("blocked", "carrier_opt_out", 21610)
    index = pii.blind_index(to, kind="phone")
    with session_scope() as s:
        event = s.execute(select(ConsentEvent).where(ConsentEvent.phone_index == index)).scalar_one()
        assert (event.kind, event.source, event.evidence["error_code"]) == ("carrier_opt_out", "carrier_error", 21610)
        states = s.execute(select(ConsentState).where(ConsentState.phone_index == index)).scalars().all()
        assert states
        assert all(st.opted_out for st in states)
    assert (row(waiting).status, row(waiting).gate_reason) == ("cancelled", "opted_out")
    assert [a.outcome for a in attempts(mid)] == ["refused"]
    # A later text to the number is blocked by our own ledger, before Twilio.
    later = put(station_id, to)
    assert send_one(later, settings=settings_with()).reason == "opted_out"


def test_21211_fails_and_marks_the_number_undeliverable(fake: FakeTwilio) -> None:
    """An invalid number fails with its code and later sends to it are blocked as not textable."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, error_code=21211)
    mid = put(station_id, to)
    result = send_one(mid, settings=settings_with())
    assert (result.status, result.error_code) == ("failed", 21211)
    with session_scope() as s:
        marked = s.get(UndeliverableNumber, pii.blind_index(to, kind="phone"))
        assert marked is not None
        assert marked.error_code == 21211
    later = put(station_id, to)
    assert send_one(later, settings=settings_with()).reason == "not_textable"
    assert fake.sent_to(to) == []


@pytest.mark.parametrize("http_status", [429, 500, 503])
def test_retryable_errors_retry_then_send_once(fake: FakeTwilio, http_status: int) -> None:
    """429/500/503 put the row back with a backoff; the next run sends it; Twilio has exactly one message."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, http_status=http_status, times=1)
    mid = put(station_id, to)

    first = send_one(mid, settings=settings_with())
    assert first.status == "pending"
    assert row(mid).not_before > datetime.now(UTC)
    assert send_one(mid, settings=settings_with()).status == "skipped"  # not due yet
    make_due(mid)
    assert send_one(mid, settings=settings_with()).status == "sent"

    assert [a.outcome for a in attempts(mid)] == ["retryable", "accepted"]
    assert len(fake.sent_to(to)) == 1
    assert row(mid).attempts == 2


def test_retries_are_bounded(fake: FakeTwilio) -> None:
    """After OUTBOUND_MAX_ATTEMPTS retryable failures the row fails for good, with a reason."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, http_status=503)
    mid = put(station_id, to)
    s = settings_with(OUTBOUND_MAX_ATTEMPTS=2)
    assert send_one(mid, settings=s).status == "pending"
    make_due(mid)
    result = send_one(mid, settings=s)
    assert (result.status, result.reason) == ("failed", "retries_exhausted")


def test_connection_refused_is_retried(fake: FakeTwilio) -> None:
    """A refused connection proves nothing was sent: the row goes back to pending, attempt 'retryable'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    mid = put(station_id, to)
    result = send_one(mid, settings=settings_with(TWILIO_API_BASE_URL=f"http://127.0.0.1:{closed_port}"))
    assert result.status == "pending"
    assert [a.outcome for a in attempts(mid)] == ["retryable"]


def test_timeout_after_accept_is_unknown_then_reconciled_without_resending(fake: FakeTwilio) -> None:
    """Twilio created the message but the answer never came: 'unknown', then the reconciler finds it; one text."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, hang_seconds=3, after_accept=True, times=1)
    mid = put(station_id, to)
    s = settings_with(TWILIO_HTTP_TIMEOUT=0.5)

    result = send_one(mid, settings=s)
    assert result.status == "unknown"
    assert [a.outcome for a in attempts(mid)] == ["timeout"]
    assert send_one(mid, settings=s).status == "skipped"  # never resent by the send path

    report = reconcile_due(settings=s)
    assert report.found == [mid]
    [created] = fake.sent_to(to)
    assert (row(mid).status, row(mid).provider_sid) == ("sent", created["sid"])
    assert [a.outcome for a in attempts(mid)] == ["reconciled_found"]


def test_timeout_before_accept_is_requeued_only_after_the_absent_delay(fake: FakeTwilio) -> None:
    """A hang that created nothing stays 'unknown' until Twilio's list has proven absence long enough."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, hang_seconds=2, times=1)
    mid = put(station_id, to)
    s = settings_with(TWILIO_HTTP_TIMEOUT=0.5)
    assert send_one(mid, settings=s).status == "unknown"

    assert reconcile_due(settings=settings_with(OUTBOUND_RECONCILE_ABSENT_SECONDS=3600)).waiting == [mid]
    assert row(mid).status == "unknown"
    backdate_attempts(mid, seconds=30)
    report = reconcile_due(settings=settings_with(OUTBOUND_RECONCILE_ABSENT_SECONDS=20, TWILIO_HTTP_TIMEOUT=5))
    assert report.requeued == [mid]
    assert [a.outcome for a in attempts(mid)] == ["reconciled_absent"]
    assert send_one(mid, settings=settings_with()).status == "sent"
    assert len(fake.sent_to(to)) == 1


def test_crash_after_the_decision_is_reconciled_both_ways(fake: FakeTwilio) -> None:
    """Rows left 'sending' by a dead worker: one Twilio has (found, not resent), one it lacks (requeued, sent once)."""
    station_id, sender = setup_station()
    to_sent, to_lost = customer_with_booking(station_id), customer_with_booking(station_id)
    sent_id, lost_id = put(station_id, to_sent), put(station_id, to_lost)
    s = settings_with()
    for mid in (sent_id, lost_id):
        with session_scope() as session:
            result, prep = decide(session, mid, task_id="dead", now=datetime.now(UTC), settings=s)
            assert result is None
            assert prep is not None
        if mid == sent_id:  # the dead worker's request reached Twilio before it died
            send_sms(make_client(s), to=to_sent, body=prep.body, from_=sender)
    assert (row(sent_id).status, row(lost_id).status) == ("sending", "sending")

    fresh = reconcile_due(settings=settings_with(OUTBOUND_SENDING_STALE_SECONDS=3600))
    assert fresh.found == fresh.requeued == []  # not stale yet: maybe still in flight
    with session_scope() as session:
        session.execute(
            text("UPDATE core.outbound_messages SET decided_at = now() - interval '10 minutes' WHERE id IN (:a, :b)"),
            {"a": sent_id, "b": lost_id},
        )
        session.execute(
            text(
                "UPDATE core.send_attempts SET started_at = now() - interval '10 minutes' "
                "WHERE outbound_id IN (:a, :b)"
            ),
            {"a": sent_id, "b": lost_id},
        )
    report = reconcile_due(
        settings=settings_with(OUTBOUND_SENDING_STALE_SECONDS=60, OUTBOUND_RECONCILE_ABSENT_SECONDS=60)
    )
    assert report.found == [sent_id]
    assert report.requeued == [lost_id]
    assert send_one(lost_id, settings=s).status == "sent"
    assert len(fake.sent_to(to_sent)) == 1
    assert len(fake.sent_to(to_lost)) == 1


def test_identical_bodies_are_matched_to_distinct_rows(fake: FakeTwilio) -> None:
    """Two unknown rows with the same body to one number, only one created at Twilio: one found, one requeued."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    body = "Your chef arrives at 5pm"
    a = put(station_id, to, body=body)
    b = put(station_id, to, body=body)
    fake.fail_number(to, hang_seconds=2, after_accept=True, times=1)
    s = settings_with(TWILIO_HTTP_TIMEOUT=0.5)
    assert send_one(a, settings=s).status == "unknown"
    fake.fail_number(to, hang_seconds=2, times=1)
    assert send_one(b, settings=s).status == "unknown"
    backdate_attempts(a, seconds=30)
    backdate_attempts(b, seconds=30)
    report = reconcile_due(settings=settings_with(OUTBOUND_RECONCILE_ABSENT_SECONDS=20, TWILIO_HTTP_TIMEOUT=5))
    assert sorted([*report.found, *report.requeued]) == sorted([a, b])
    assert len(report.found) == 1
    assert len(fake.sent_to(to)) == 1


def test_opt_out_cancels_queued_rows_but_not_its_confirmation(fake: FakeTwilio) -> None:
    """After STOP, waiting rows are cancelled (reason opted_out); the confirmation goes once, a second is blocked."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    add_consent(None, to)
    queued = [put(station_id, to, purpose="marketing") for _ in range(3)]
    deferred = put(station_id, to, purpose="marketing", not_before=datetime.now(UTC) + timedelta(hours=5))
    with session_scope() as s:
        st = s.get(Station, station_id)
        assert st is not None
        result = record_event(
            s,
            phone_e164=to,
            kind="opt_out",
            purpose="all",
            source="sms_keyword",
            evidence={"body": "STOP"},
            occurred_at=datetime.now(UTC),
            station_id=None,
        )
        confirmation = queue_opt_out_confirmation(s, station=st, phone_e164=to, event_id=result.event.id)
        cancel_after_opt_out(s, result.event.phone_index, keep_ids=frozenset({confirmation.id}))
        confirmation_id, event_id = confirmation.id, result.event.id
    for mid in [*queued, deferred]:
        assert (row(mid).status, row(mid).gate_reason) == ("cancelled", "opted_out")
        assert send_one(mid, now=noon_la(), settings=settings_with()).status == "skipped"
    assert send_one(confirmation_id, settings=settings_with()).status == "sent"
    again = put(station_id, to, purpose="compliance", body="You are unsubscribed.", in_reply_to_event_id=event_id)
    assert send_one(again, settings=settings_with()).reason == "confirmation_already_sent"
    assert len(fake.sent_to(to)) == 1


def test_same_key_twice_is_one_row(fake: FakeTwilio) -> None:
    """enqueue with the same idempotency key returns the existing row, not a second message."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    first = put(station_id, to, key="booking-42-reminder")
    second = put(station_id, to, key="booking-42-reminder")
    assert first == second
    with session_scope() as s:
        n = s.execute(
            select(func.count()).select_from(OutboundMessage).where(
                OutboundMessage.idempotency_key == "booking-42-reminder"
            )
        ).scalar_one()
    assert n == 1


def test_rate_limit_holds_the_second_message_of_a_one_per_second_sender(fake: FakeTwilio) -> None:
    """At 1 message/s per sender, the second immediate send goes back to the outbox about a second later."""
    station_id, _ = setup_station()
    to1, to2 = customer_with_booking(station_id), customer_with_booking(station_id)
    a, b = put(station_id, to1), put(station_id, to2)
    s = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True)
    assert send_one(a, settings=s).status == "sent"
    result = send_one(b, settings=s)
    assert (result.status, result.reason) == ("pending", "rate_limited")
    wait = (row(b).not_before - datetime.now(UTC)).total_seconds()
    assert 0.3 < wait <= 1.1
    assert attempts(b) == []
    assert fake.sent_to(to2) == []


def test_rate_limit_charges_a_long_text_its_segments(fake: FakeTwilio) -> None:
    """At 1 segment/s, a 3-segment text holds the sender's next text about 3 s; the basis records the 3 segments."""
    station_id, _ = setup_station()
    to1, to2 = customer_with_booking(station_id), customer_with_booking(station_id)
    long_body = "Your booking is confirmed. " + "Menu details follow. " * 19  # 426 GSM-7 septets: 3 segments
    a, b = put(station_id, to1, body=long_body), put(station_id, to2)
    s = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True)
    assert send_one(a, settings=s).status == "sent"
    result = send_one(b, settings=s)
    assert (result.status, result.reason) == ("pending", "rate_limited")
    wait = (row(b).not_before - datetime.now(UTC)).total_seconds()
    assert 2.3 < wait <= 3.1
    assert row(a).gate_basis["segments"] == 3  # type: ignore[index]
    assert [m["num_segments"] for m in fake.sent_to(to1)] == ["3"]
    assert fake.sent_to(to2) == []


def test_prior_attempt_is_never_resent(fake: FakeTwilio) -> None:
    """A row somehow queued again after an attempt that may have reached Twilio goes to 'unknown', not to Twilio."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    mid = put(station_id, to)
    with session_scope() as s:
        s.add(SendAttempt(outbound_id=mid, task_id="earlier", outcome="timeout"))
        s.execute(text("UPDATE core.outbound_messages SET status = 'queued' WHERE id = :id"), {"id": mid})
    result = send_one(mid, settings=settings_with())
    assert (result.status, result.reason) == ("unknown", "prior_attempt")
    assert fake.sent_to(to) == []


def test_release_tick_queues_due_rows_and_publishes_after_commit(fake: FakeTwilio) -> None:
    """Due rows become 'queued' with send tasks registered for after commit; future rows stay put."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    due = [put(station_id, to) for _ in range(3)]
    later = put(station_id, to, not_before=datetime.now(UTC) + timedelta(hours=1))
    with rolled_back() as s:
        released = release_due(s, settings=settings_with(OUTBOUND_SEND_CHUNK=2))
        tasks = pending_tasks(s)
    assert sorted(released) == sorted(due)
    assert [name for name, _, _ in tasks] == ["tasks.send.send_messages"] * 2
    assert sorted(i for _, kw, _ in tasks for i in kw["message_ids"]) == sorted(str(x) for x in due)
    assert row(later).status == "pending"
    assert all(row(m).status == "pending" for m in due)


def test_paced_release_caps_rows_per_sender(fake: FakeTwilio) -> None:
    """With rate limiting on, one tick releases about two seconds' worth for a 1/s sender."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    for _ in range(6):
        put(station_id, to)
    with rolled_back() as s:
        released = release_due(s, settings=settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True))
    assert len(released) == 2


def test_paced_release_counts_segments_and_never_starves_a_long_text(fake: FakeTwilio) -> None:
    """A 1/s sender gets two seconds' worth of segments per tick: a 3-segment text first in line
    goes alone (more than the window, but never held back here); behind two short texts it waits."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    long_body = "Your booking is confirmed. " + "Menu details follow. " * 19  # 3 GSM-7 segments
    first = put(station_id, to, body=long_body)
    for _ in range(2):
        put(station_id, to)
    assert row(first).segments == 3
    paced = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True)
    with rolled_back() as s:
        assert release_due(s, settings=paced) == [first]
    with session_scope() as s:  # out of the way: now a long text waits behind the two short ones
        s.execute(text("UPDATE core.outbound_messages SET not_before = now() + interval '1 hour' WHERE id = :id"),
                  {"id": first})
    later = put(station_id, to, body=long_body)
    with rolled_back() as s:
        released = release_due(s, settings=paced)
    assert len(released) == 2
    assert later not in released


def test_a_batch_decides_each_row_on_its_own_and_sends_the_allowed_in_parallel(fake: FakeTwilio) -> None:
    """A batch of allowed, blocked, deferred, two-to-one-number and settled rows: one result each, in order."""
    station_id, _ = setup_station()
    a, b = customer_with_booking(station_id), customer_with_booking(station_id)
    add_consent(None, b)
    allowed_1 = put(station_id, a)
    allowed_2 = put(station_id, a)  # same number: its lock is taken once, both go out
    blocked = put(station_id, a, purpose="marketing")  # no written consent for a
    deferred = put(station_id, b, purpose="marketing")
    settled = put(station_id, b)
    with session_scope() as s:
        s.execute(text("UPDATE core.outbound_messages SET status = 'cancelled' WHERE id = :id"), {"id": settled})
    late = datetime.now(LA).replace(hour=23, minute=0, second=0, microsecond=0)
    ids = [allowed_1, blocked, settled, deferred, allowed_2]

    results = send_batch(ids, task_id="batch-1", now=late, settings=settings_with())

    assert [r.message_id for r in results] == ids
    assert [r.status for r in results] == ["sent", "blocked", "skipped", "deferred", "sent"]
    assert len(fake.sent_to(a)) == 2
    assert fake.sent_to(b) == []
    snapshots = {row(i).gate_basis["snapshot"] for i in (allowed_1, blocked, deferred, allowed_2)}  # type: ignore[index]
    assert len(snapshots) == 1  # one decision statement for the batch
