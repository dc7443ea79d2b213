"""The send path (worker.outbound: send, reconcile, release): real database, fake Twilio over HTTP.

Most tests pass ``db_scope`` to the flows and helpers: every transaction is a savepoint of the
test's own, rolled back at the end, so nothing is committed and no table is truncated. The
few whose steps need the database clock to move between transactions (inside one, now()
stands still) keep real ones on truncated tables (``clean_db``, the helpers' default scope).
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support.broker import waiting_messages
from tests.support.webhooks import new_sid
from worker import pii
from worker.after_commit import pending_tasks
from worker.consent.effects import cancel_after_opt_out, queue_opt_out_confirmation
from worker.consent.ledger import record_event
from worker.db import SessionScope, session_scope
from worker.models import (
    ConsentEvent,
    ConsentState,
    OutboundMessage,
    SendAttempt,
    Station,
    StationSender,
    UndeliverableNumber,
)
from worker.outbound.release import release_due
from worker.outbound.send import decide, reconcile_due, send_batch, send_one
from worker.outbox import enqueue
from worker.provider.client import make_client, send_sms
from worker.provider.fake import FakeTwilio
from worker.settings import Settings, get_settings
from worker.web import inbox_store

LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def fake(clean_redis: Any, fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio



def settings_with(**overrides: Any) -> Settings:
    """This run's settings with overrides; rate limiting off unless a test turns it on."""
    base: dict[str, Any] = {"OUTBOUND_RATE_LIMIT_ENABLED": False}
    base.update(overrides)
    return get_settings().model_copy(update=base)


def noon_la() -> datetime:
    """Today's noon in Los Angeles (the factory numbers are 415): inside every window."""
    return datetime.now(LA).replace(hour=12, minute=0, second=0, microsecond=0)


def setup_station(
    *, messaging_service_sid: str | None = None, scope: SessionScope = session_scope
) -> tuple[uuid.UUID, str]:
    with scope() as s:
        st = make_station(s, messaging_service_sid=messaging_service_sid)
        sender = s.execute(select(StationSender.address).where(StationSender.station_id == st.id)).scalar_one()
        return st.id, sender


def customer_with_booking(
    station_id: uuid.UUID, number: str | None = None, *, scope: SessionScope = session_scope
) -> str:
    number = number or phone()
    with scope() as s:
        st = s.get(Station, station_id)
        assert st is not None
        make_booking(s, make_customer(s, st, phone_e164=number))
    return number


def add_consent(
    station_id: uuid.UUID | None, number: str, kind: str = "marketing_consent", *, scope: SessionScope = session_scope
) -> uuid.UUID:
    with scope() as s:
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
    station_id: uuid.UUID,
    to: str,
    *,
    purpose: str = "transactional",
    body: str | None = None,
    scope: SessionScope = session_scope,
    **kw: Any,
) -> uuid.UUID:
    with scope() as s:
        return enqueue(
            s,
            station_id=station_id,
            to=to,
            body=body or f"Your booking is confirmed ({uuid.uuid4().hex[:8]})",
            purpose=purpose,
            idempotency_key=kw.pop("key", uuid.uuid4().hex),
            **kw,
        ).message.id


def row(message_id: uuid.UUID, *, scope: SessionScope = session_scope) -> OutboundMessage:
    with scope() as s:
        msg = s.get(OutboundMessage, message_id)
        assert msg is not None
        s.expunge(msg)
        return msg


def attempts(message_id: uuid.UUID, *, scope: SessionScope = session_scope) -> list[SendAttempt]:
    with scope() as s:
        found = list(
            s.execute(
                select(SendAttempt).where(SendAttempt.outbound_id == message_id).order_by(SendAttempt.started_at)
            ).scalars()
        )
        s.expunge_all()
        return found


class _Undo(Exception):
    """Raised to leave a scope by its rollback path."""


@contextmanager
def rolled_back(scope: SessionScope = session_scope) -> Iterator[Session]:
    """A scope whose work is rolled back at the end: nothing committed, nothing published."""
    try:
        with scope() as session:
            yield session
            raise _Undo
    except _Undo:
        pass


def backdate_attempts(message_id: uuid.UUID, *, seconds: int, scope: SessionScope = session_scope) -> None:
    """Pretend the row's attempts began ``seconds`` ago (instead of sleeping through the absent delay)."""
    with scope() as s:
        s.execute(
            text("UPDATE core.send_attempts SET started_at = started_at - make_interval(secs => :s) "
                 "WHERE outbound_id = :id"),
            {"id": message_id, "s": seconds},
        )


def make_due(message_id: uuid.UUID, *, scope: SessionScope = session_scope) -> None:
    with scope() as s:
        s.execute(
            text("UPDATE core.outbound_messages SET not_before = now() - interval '1 second' WHERE id = :id"),
            {"id": message_id},
        )


def test_allowed_transactional_send_records_the_sid_and_the_decision(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """A transactional text to a customer with a booking is sent once, with callback URL and validity period."""
    station_id, sender = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    mid = put(station_id, to, scope=db_scope)

    result = send_one(mid, task_id="task-1", settings=settings_with(), scope=db_scope)

    assert result.status == "sent"
    msg = row(mid, scope=db_scope)
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
    [attempt] = attempts(mid, scope=db_scope)
    assert (attempt.outcome, attempt.provider_sid, attempt.task_id) == ("accepted", msg.provider_sid, "task-1")


def test_messaging_service_sender_sends_through_the_service(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """A sender with a Messaging Service SID sends with MessagingServiceSid and no From."""
    station_id, _ = setup_station(messaging_service_sid="MG" + "a" * 32, scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    mid = put(station_id, to, scope=db_scope)
    assert send_one(mid, settings=settings_with(), scope=db_scope).status == "sent"
    params = fake.create_params(fake.sent_to(to)[0]["sid"])
    assert params["MessagingServiceSid"] == ["MG" + "a" * 32]
    assert "From" not in params


def test_blocked_send_never_reaches_twilio(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """Marketing without written consent is blocked with its reason; Twilio hears nothing."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    mid = put(station_id, to, purpose="marketing", scope=db_scope)
    result = send_one(mid, now=noon_la(), settings=settings_with(), scope=db_scope)
    assert (result.status, result.reason) == ("blocked", "no_marketing_consent")
    assert row(mid, scope=db_scope).gate_reason == "no_marketing_consent"
    assert fake.sent_to(to) == []
    assert attempts(mid, scope=db_scope) == []


def test_marketing_with_consent_at_night_is_deferred_to_the_morning(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """At 23:30 recipient time, marketing waits in the outbox until 09:00 local (California's start,
    docs/compliance.md#state-windows); the release tick leaves it there."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    consent_id = add_consent(None, to, scope=db_scope)
    mid = put(station_id, to, purpose="marketing", scope=db_scope)
    late = datetime.now(LA).replace(hour=23, minute=30, second=0, microsecond=0)

    result = send_one(mid, now=late, settings=settings_with(), scope=db_scope)

    assert (result.status, result.reason) == ("deferred", "quiet_hours")
    msg = row(mid, scope=db_scope)
    assert msg.not_before == (late + timedelta(days=1)).replace(hour=9, minute=0)
    assert msg.gate_basis is not None
    assert str(consent_id) in msg.gate_basis["events"]
    with db_scope() as s:
        assert mid not in release_due(s, settings=settings_with())
    assert fake.sent_to(to) == []


def test_marketing_with_consent_at_noon_is_sent(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """Written consent on record and a lawful hour: the marketing text goes, its basis naming the consent."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    consent_id = add_consent(station_id, to, scope=db_scope)
    mid = put(station_id, to, purpose="marketing", scope=db_scope)
    assert send_one(mid, now=noon_la(), settings=settings_with(), scope=db_scope).status == "sent"
    basis = row(mid, scope=db_scope).gate_basis
    assert basis is not None
    assert basis["events"][0] == str(consent_id)
    assert len(fake.sent_to(to)) == 1


def test_21610_blocks_and_records_a_carrier_opt_out(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """Twilio's 21610 marks the row blocked and appends a carrier opt-out to the ledger; queued rows are cancelled."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    fake.fail_number(to, error_code=21610)
    mid = put(station_id, to, scope=db_scope)
    waiting = put(station_id, to, not_before=datetime.now(UTC) + timedelta(hours=1), scope=db_scope)

    result = send_one(mid, settings=settings_with(), scope=db_scope)

    assert (result.status, result.reason, result.error_code) == ("blocked", "carrier_opt_out", 21610)
    index = pii.blind_index(to, kind="phone")
    with db_scope() as s:
        event = s.execute(select(ConsentEvent).where(ConsentEvent.phone_index == index)).scalar_one()
        assert (event.kind, event.source, event.evidence["error_code"]) == ("carrier_opt_out", "carrier_error", 21610)
        states = s.execute(select(ConsentState).where(ConsentState.phone_index == index)).scalars().all()
        assert states
        assert all(st.opted_out for st in states)
    assert (row(waiting, scope=db_scope).status, row(waiting, scope=db_scope).gate_reason) == ("cancelled", "opted_out")
    assert [a.outcome for a in attempts(mid, scope=db_scope)] == ["refused"]
    # A later text to the number is blocked by our own ledger, before Twilio.
    later = put(station_id, to, scope=db_scope)
    assert send_one(later, settings=settings_with(), scope=db_scope).reason == "opted_out"


def test_21211_fails_and_marks_the_number_undeliverable(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """An invalid number fails with its code and later sends to it are blocked as not textable."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    fake.fail_number(to, error_code=21211)
    mid = put(station_id, to, scope=db_scope)
    result = send_one(mid, settings=settings_with(), scope=db_scope)
    assert (result.status, result.error_code) == ("failed", 21211)
    with db_scope() as s:
        marked = s.get(UndeliverableNumber, pii.blind_index(to, kind="phone"))
        assert marked is not None
        assert marked.error_code == 21211
    later = put(station_id, to, scope=db_scope)
    assert send_one(later, settings=settings_with(), scope=db_scope).reason == "not_textable"
    assert fake.sent_to(to) == []


@pytest.mark.parametrize("http_status", [429, 500, 503])
def test_retryable_errors_retry_then_send_once(fake: FakeTwilio, db_scope: SessionScope, http_status: int) -> None:
    """429/500/503 put the row back with a backoff; the next run sends it; Twilio has exactly one message."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    fake.fail_number(to, http_status=http_status, times=1)
    mid = put(station_id, to, scope=db_scope)

    first = send_one(mid, settings=settings_with(), scope=db_scope)
    assert first.status == "pending"
    assert row(mid, scope=db_scope).not_before > datetime.now(UTC)
    assert send_one(mid, settings=settings_with(), scope=db_scope).status == "skipped"  # not due yet
    make_due(mid, scope=db_scope)
    assert send_one(mid, settings=settings_with(), scope=db_scope).status == "sent"

    assert [a.outcome for a in attempts(mid, scope=db_scope)] == ["retryable", "accepted"]
    assert len(fake.sent_to(to)) == 1
    assert row(mid, scope=db_scope).attempts == 2


def test_retries_are_bounded(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """After OUTBOUND_MAX_ATTEMPTS retryable failures the row fails for good, with a reason."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    fake.fail_number(to, http_status=503)
    mid = put(station_id, to, scope=db_scope)
    s = settings_with(OUTBOUND_MAX_ATTEMPTS=2)
    assert send_one(mid, settings=s, scope=db_scope).status == "pending"
    make_due(mid, scope=db_scope)
    result = send_one(mid, settings=s, scope=db_scope)
    assert (result.status, result.reason) == ("failed", "retries_exhausted")


def test_connection_refused_is_retried(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """A refused connection proves nothing was sent: the row goes back to pending, attempt 'retryable'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    mid = put(station_id, to, scope=db_scope)
    result = send_one(
        mid, settings=settings_with(TWILIO_API_BASE_URL=f"http://127.0.0.1:{closed_port}"), scope=db_scope
    )
    assert result.status == "pending"
    assert [a.outcome for a in attempts(mid, scope=db_scope)] == ["retryable"]


def test_timeout_after_accept_is_unknown_then_reconciled_without_resending(
    fake: FakeTwilio, db_scope: SessionScope
) -> None:
    """Twilio created the message but the answer never came: 'unknown', then the reconciler finds it; one text."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    fake.fail_number(to, hang_seconds=3, after_accept=True, times=1)
    mid = put(station_id, to, scope=db_scope)
    s = settings_with(TWILIO_HTTP_TIMEOUT=0.5)

    result = send_one(mid, settings=s, scope=db_scope)
    assert result.status == "unknown"
    assert [a.outcome for a in attempts(mid, scope=db_scope)] == ["timeout"]
    assert send_one(mid, settings=s, scope=db_scope).status == "skipped"  # never resent by the send path

    report = reconcile_due(settings=s, scope=db_scope)
    assert report.found == [mid]
    [created] = fake.sent_to(to)
    assert (row(mid, scope=db_scope).status, row(mid, scope=db_scope).provider_sid) == ("sent", created["sid"])
    assert [a.outcome for a in attempts(mid, scope=db_scope)] == ["reconciled_found"]


def test_timeout_before_accept_is_requeued_only_after_the_absent_delay(fake: FakeTwilio, clean_db: str) -> None:
    """A hang that created nothing stays 'unknown' until Twilio's list has proven absence long enough."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    fake.fail_number(to, hang_seconds=2, times=1)
    mid = put(station_id, to)
    s = settings_with(TWILIO_HTTP_TIMEOUT=0.5)
    assert send_one(mid, settings=s).status == "unknown"

    waiting = reconcile_due(settings=settings_with(OUTBOUND_RECONCILE_ABSENT_SECONDS=3600)).waiting
    assert waiting == [mid]
    assert row(mid).status == "unknown"
    backdate_attempts(mid, seconds=30)
    report = reconcile_due(
        settings=settings_with(OUTBOUND_RECONCILE_ABSENT_SECONDS=20, TWILIO_HTTP_TIMEOUT=5)
    )
    assert report.requeued == [mid]
    assert [a.outcome for a in attempts(mid)] == ["reconciled_absent"]
    assert send_one(mid, settings=settings_with()).status == "sent"
    assert len(fake.sent_to(to)) == 1


def test_crash_after_the_decision_is_reconciled_both_ways(fake: FakeTwilio, clean_db: str) -> None:
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
        settings=settings_with(OUTBOUND_SENDING_STALE_SECONDS=60, OUTBOUND_RECONCILE_ABSENT_SECONDS=60))
    assert report.found == [sent_id]
    assert report.requeued == [lost_id]
    assert send_one(lost_id, settings=s).status == "sent"
    assert len(fake.sent_to(to_sent)) == 1
    assert len(fake.sent_to(to_lost)) == 1


def test_identical_bodies_are_matched_to_distinct_rows(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """Two unknown rows with the same body to one number, only one created at Twilio: one found, one requeued."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    body = "Your chef arrives at 5pm"
    a = put(station_id, to, body=body, scope=db_scope)
    b = put(station_id, to, body=body, scope=db_scope)
    fake.fail_number(to, hang_seconds=2, after_accept=True, times=1)
    s = settings_with(TWILIO_HTTP_TIMEOUT=0.5)
    assert send_one(a, settings=s, scope=db_scope).status == "unknown"
    fake.fail_number(to, hang_seconds=2, times=1)
    assert send_one(b, settings=s, scope=db_scope).status == "unknown"
    backdate_attempts(a, seconds=30, scope=db_scope)
    backdate_attempts(b, seconds=30, scope=db_scope)
    report = reconcile_due(
        settings=settings_with(OUTBOUND_RECONCILE_ABSENT_SECONDS=20, TWILIO_HTTP_TIMEOUT=5), scope=db_scope
    )
    assert sorted([*report.found, *report.requeued]) == sorted([a, b])
    assert len(report.found) == 1
    assert len(fake.sent_to(to)) == 1


def test_opt_out_cancels_queued_rows_but_not_its_confirmation(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """After STOP, waiting rows are cancelled (reason opted_out); the confirmation goes once, a second is blocked."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    add_consent(None, to, scope=db_scope)
    queued = [put(station_id, to, purpose="marketing", scope=db_scope) for _ in range(3)]
    deferred = put(
        station_id, to, purpose="marketing", not_before=datetime.now(UTC) + timedelta(hours=5), scope=db_scope
    )
    with db_scope() as s:
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
        assert (row(mid, scope=db_scope).status, row(mid, scope=db_scope).gate_reason) == ("cancelled", "opted_out")
        assert send_one(mid, now=noon_la(), settings=settings_with(), scope=db_scope).status == "skipped"
    assert send_one(confirmation_id, settings=settings_with(), scope=db_scope).status == "sent"
    again = put(
        station_id, to, purpose="compliance", body="You are unsubscribed.", in_reply_to_event_id=event_id,
        scope=db_scope,
    )
    assert send_one(again, settings=settings_with(), scope=db_scope).reason == "confirmation_already_sent"
    assert len(fake.sent_to(to)) == 1


def test_same_key_twice_is_one_row(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """enqueue with the same idempotency key returns the existing row, not a second message."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    first = put(station_id, to, key="booking-42-reminder", scope=db_scope)
    second = put(station_id, to, key="booking-42-reminder", scope=db_scope)
    assert first == second
    with db_scope() as s:
        n = s.execute(
            select(func.count()).select_from(OutboundMessage).where(
                OutboundMessage.idempotency_key == "booking-42-reminder"
            )
        ).scalar_one()
    assert n == 1


def test_rate_limit_holds_the_second_message_of_a_one_per_second_sender(
    fake: FakeTwilio, db_scope: SessionScope
) -> None:
    """At 1 message/s per sender, the second immediate send goes back to the outbox about a second later."""
    station_id, _ = setup_station(scope=db_scope)
    to1, to2 = customer_with_booking(station_id, scope=db_scope), customer_with_booking(station_id, scope=db_scope)
    a, b = put(station_id, to1, scope=db_scope), put(station_id, to2, scope=db_scope)
    s = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True)
    assert send_one(a, settings=s, scope=db_scope).status == "sent"
    result = send_one(b, settings=s, scope=db_scope)
    assert (result.status, result.reason) == ("pending", "rate_limited")
    wait = (row(b, scope=db_scope).not_before - datetime.now(UTC)).total_seconds()
    assert 0.3 < wait <= 1.1
    assert attempts(b, scope=db_scope) == []
    assert fake.sent_to(to2) == []


def _send_tasks_waiting(broker: redis.Redis) -> list[tuple[list[str], datetime | None]]:
    """The send tasks published to the broker (message ids, ETA), read from Celery's Redis queue."""
    found = []
    for message in waiting_messages(broker):
        if message["headers"]["task"] == "tasks.send.send_messages":
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            eta = message["headers"].get("eta")
            found.append((kwargs["message_ids"], datetime.fromisoformat(eta) if eta else None))
    return found


def test_rate_limit_holds_the_next_token_for_the_row_and_schedules_its_send(
    fake: FakeTwilio, db_scope: SessionScope, clean_redis: redis.Redis
) -> None:
    """At 1/s, the second row's token (due in ~1 s) is held for it and its send task is published with that
    countdown; when it runs, the row goes at once, while a newcomer waits behind the held token."""
    station_id, _ = setup_station(scope=db_scope)
    to1, to2, to3 = (customer_with_booking(station_id, scope=db_scope) for _ in range(3))
    a, b, c = (put(station_id, to, scope=db_scope) for to in (to1, to2, to3))
    s = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True)
    assert send_one(a, settings=s, scope=db_scope).status == "sent"
    assert _send_tasks_waiting(clean_redis) == []
    published = datetime.now(UTC)
    assert (send_one(b, settings=s, scope=db_scope).reason) == "rate_limited"
    [(ids, eta)] = _send_tasks_waiting(clean_redis)
    assert ids == [str(b)]
    assert eta is not None
    due = row(b, scope=db_scope).not_before
    assert 0.3 < (due - published).total_seconds() <= 1.1
    assert due <= eta <= due + timedelta(seconds=0.2)  # never before the row is due
    # The task's turn: the row is sent although the bucket is empty (its token was held for it).
    time.sleep(max(0.0, (eta - datetime.now(UTC)).total_seconds()))
    make_due(b, scope=db_scope)  # the test's one transaction keeps the database's now() still
    assert send_one(b, settings=s, scope=db_scope).status == "sent"
    # A newcomer now waits for the token after b's, a full second on.
    assert send_one(c, settings=s, scope=db_scope).reason == "rate_limited"
    assert 0.8 < (row(c, scope=db_scope).not_before - datetime.now(UTC)).total_seconds() <= 1.1
    assert [len(fake.sent_to(to)) for to in (to1, to2, to3)] == [1, 1, 0]


def test_rate_limit_charges_a_long_text_its_segments(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """At 1 segment/s, a 3-segment text holds the sender's next text about 3 s; the basis records the 3 segments."""
    station_id, _ = setup_station(scope=db_scope)
    to1, to2 = customer_with_booking(station_id, scope=db_scope), customer_with_booking(station_id, scope=db_scope)
    long_body = "Your booking is confirmed. " + "Menu details follow. " * 19  # 426 GSM-7 septets: 3 segments
    a, b = put(station_id, to1, body=long_body, scope=db_scope), put(station_id, to2, scope=db_scope)
    s = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True)
    assert send_one(a, settings=s, scope=db_scope).status == "sent"
    result = send_one(b, settings=s, scope=db_scope)
    assert (result.status, result.reason) == ("pending", "rate_limited")
    wait = (row(b, scope=db_scope).not_before - datetime.now(UTC)).total_seconds()
    assert 2.3 < wait <= 3.1
    assert row(a, scope=db_scope).gate_basis["segments"] == 3  # type: ignore[index]
    assert [m["num_segments"] for m in fake.sent_to(to1)] == ["3"]
    assert fake.sent_to(to2) == []


def test_prior_attempt_is_never_resent(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """A row somehow queued again after an attempt that may have reached Twilio goes to 'unknown', not to Twilio."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    mid = put(station_id, to, scope=db_scope)
    with db_scope() as s:
        s.add(SendAttempt(outbound_id=mid, task_id="earlier", outcome="timeout"))
        s.execute(text("UPDATE core.outbound_messages SET status = 'queued' WHERE id = :id"), {"id": mid})
    result = send_one(mid, settings=settings_with(), scope=db_scope)
    assert (result.status, result.reason) == ("unknown", "prior_attempt")
    assert fake.sent_to(to) == []


def test_release_tick_queues_due_rows_and_publishes_after_commit(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """Due rows become 'queued' with send tasks registered for after commit; future rows stay put."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    due = [put(station_id, to, scope=db_scope) for _ in range(3)]
    later = put(station_id, to, not_before=datetime.now(UTC) + timedelta(hours=1), scope=db_scope)
    with rolled_back(db_scope) as s:
        released = release_due(s, settings=settings_with(OUTBOUND_SEND_CHUNK=2))
        tasks = pending_tasks(s)
    assert sorted(released) == sorted(due)
    assert [name for name, _, _ in tasks] == ["tasks.send.send_messages"] * 2
    assert sorted(i for _, kw, _ in tasks for i in kw["message_ids"]) == sorted(str(x) for x in due)
    assert row(later, scope=db_scope).status == "pending"
    assert all(row(m, scope=db_scope).status == "pending" for m in due)


def test_paced_release_caps_rows_per_sender(fake: FakeTwilio, db_scope: SessionScope) -> None:
    """With rate limiting on, one tick releases about two seconds' worth for a 1/s sender."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    for _ in range(6):
        put(station_id, to, scope=db_scope)
    with rolled_back(db_scope) as s:
        released = release_due(s, settings=settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True))
    assert len(released) == 2


def test_paced_release_counts_segments_and_never_starves_a_long_text(fake: FakeTwilio, clean_db: str) -> None:
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


def test_a_batch_decides_each_row_on_its_own_and_sends_the_allowed_in_parallel(
    fake: FakeTwilio, db_scope: SessionScope
) -> None:
    """A batch of allowed, blocked, deferred, two-to-one-number and settled rows: one result each, in order."""
    station_id, _ = setup_station(scope=db_scope)
    a, b = customer_with_booking(station_id, scope=db_scope), customer_with_booking(station_id, scope=db_scope)
    add_consent(None, b, scope=db_scope)
    allowed_1 = put(station_id, a, scope=db_scope)
    allowed_2 = put(station_id, a, scope=db_scope)  # same number: its lock is taken once, both go out
    blocked = put(station_id, a, purpose="marketing", scope=db_scope)  # no written consent for a
    deferred = put(station_id, b, purpose="marketing", scope=db_scope)
    settled = put(station_id, b, scope=db_scope)
    with db_scope() as s:
        s.execute(text("UPDATE core.outbound_messages SET status = 'cancelled' WHERE id = :id"), {"id": settled})
    late = datetime.now(LA).replace(hour=23, minute=0, second=0, microsecond=0)
    ids = [allowed_1, blocked, settled, deferred, allowed_2]

    results = send_batch(ids, task_id="batch-1", now=late, settings=settings_with(), scope=db_scope)

    assert [r.message_id for r in results] == ids
    assert [r.status for r in results] == ["sent", "blocked", "skipped", "deferred", "sent"]
    assert len(fake.sent_to(a)) == 2
    assert fake.sent_to(b) == []
    snapshots = {row(i, scope=db_scope).gate_basis["snapshot"] for i in (allowed_1, blocked, deferred, allowed_2)}  # type: ignore[index]
    assert len(snapshots) == 1  # one decision statement for the batch


def _inbound_waiting(number: str | None, *, provider: str = "twilio_sms", status: str = "pending") -> None:
    """An inbound webhook stored as the receiver stores it (worker/web/inbox_store.py, committed), with the
    sender's blind index (None: a sender not known, as on rows stored before migration 0007), left ``status``.
    No drain runs in these tests, so a pending row stays pending."""
    sid = new_sid()
    payload = f"MessageSid={sid}&From=%2B1000&To=%2B1000&Body=STOP"
    index = pii.blind_index(number, kind="phone") if number is not None else None
    assert inbox_store.store(provider=provider, event_id=sid, delivery_id=None,
                             content_type="application/x-www-form-urlencoded", payload=payload, from_index=index)
    if status != "pending":
        with session_scope() as s:
            s.execute(text("UPDATE core.webhook_inbox SET status = :st, processed_at = now()"
                           " WHERE provider_event_id = :sid"), {"st": status, "sid": sid})


def test_a_text_waiting_in_the_inbox_defers_sends_to_its_sender_only(fake: FakeTwilio, clean_db: str) -> None:
    """An acknowledged inbound SMS from the number, not yet applied (it may be a STOP): the number's text is
    deferred a second (reason inbox_pending), nothing reaches Twilio; another number's text goes. Once ingest
    has processed the row, the deferred text is sent."""
    station_id, _ = setup_station()
    to, other = customer_with_booking(station_id), customer_with_booking(station_id)
    add_consent(None, to)
    marketing, transactional, unrelated = (put(station_id, to, purpose="marketing"), put(station_id, to),
                                           put(station_id, other))
    _inbound_waiting(to)
    noon = noon_la()

    results = send_batch([marketing, transactional, unrelated], task_id="t", now=noon, settings=settings_with())

    assert [(r.status, r.reason) for r in results] == [("deferred", "inbox_pending"), ("deferred", "inbox_pending"),
                                                         ("sent", None)]
    for mid in (marketing, transactional):
        msg = row(mid)
        assert msg.gate_reason == "inbox_pending"
        assert msg.gate_basis is not None
        assert msg.gate_basis["rules"][-1] == "inbox_pending:deferred"
        assert msg.not_before == noon + timedelta(seconds=1)  # GatePolicy.inbox_pending_delay
        assert attempts(mid) == []
    assert fake.sent_to(to) == []
    assert len(fake.sent_to(other)) == 1
    # Ingest applied it (a plain text, say): the next decision lets both go.
    with session_scope() as s:
        s.execute(text("UPDATE core.webhook_inbox SET status = 'processed', processed_at = now()"))
    make_due(marketing)
    make_due(transactional)
    again = send_batch([marketing, transactional], task_id="t2", now=noon_la(), settings=settings_with())
    assert [r.status for r in again] == ["sent", "sent"]
    assert row(marketing).gate_basis["rules"][-1] == "inbox_clear"  # type: ignore[index]
    assert len(fake.sent_to(to)) == 2


@pytest.mark.parametrize("status", ["processed", "failed"])
def test_a_processed_or_failed_inbox_row_does_not_hold_sends(fake: FakeTwilio, clean_db: str, status: str) -> None:
    """Only pending rows wait: a row ingest processed (its effects committed with it) or gave up on (it shows in
    `msgworker inbox failed` for staff) holds nothing, so a poison row never blocks the number for good."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    _inbound_waiting(to, status=status)
    assert send_one(put(station_id, to), settings=settings_with()).status == "sent"


def test_an_inbound_sms_from_an_unknown_sender_defers_every_send(fake: FakeTwilio, clean_db: str) -> None:
    """A pending SMS with no sender index (stored before migration 0007, or by an older receiver during a
    deploy) could be a STOP from anyone: every send waits for it. A pending status callback (never an index)
    holds nothing."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    _inbound_waiting(None, provider="twilio_status")
    assert send_one(put(station_id, to), settings=settings_with()).status == "sent"
    _inbound_waiting(None)
    result = send_one(put(station_id, to), settings=settings_with())
    assert (result.status, result.reason) == ("deferred", "inbox_pending")
    assert len(fake.sent_to(to)) == 1


def test_the_opt_out_confirmation_does_not_wait_for_the_inbox(fake: FakeTwilio, clean_db: str) -> None:
    """After a STOP is applied, another text from the number waiting in the inbox does not hold the one
    confirmation the law allows (it has its own deadline); a transactional text stays blocked as opted out."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    with session_scope() as s:
        st = s.get(Station, station_id)
        assert st is not None
        result = record_event(s, phone_e164=to, kind="opt_out", purpose="all", source="sms_keyword",
                              evidence={"body": "STOP"}, occurred_at=datetime.now(UTC), station_id=None)
        confirmation = queue_opt_out_confirmation(s, station=st, phone_e164=to, event_id=result.event.id).id
    _inbound_waiting(to)
    assert send_one(confirmation, settings=settings_with()).status == "sent"
    blocked = send_one(put(station_id, to), settings=settings_with())
    assert (blocked.status, blocked.reason) == ("blocked", "opted_out")
    assert len(fake.sent_to(to)) == 1
