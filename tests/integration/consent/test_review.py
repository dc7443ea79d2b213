"""The review queue on real Postgres: open, resolve, expire at the business-day deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from tasks.consent import run_deadline_tick
from tests.factories import make_customer, make_station
from tests.support.consent import make_inbound
from worker.audit import Actor
from worker.beat import BEAT_SCHEDULE
from worker.consent import review
from worker.consent.inbound import handle_inbound
from worker.consent.ledger import verify_ledger
from worker.consent.state import covering_state
from worker.db import SessionScope
from worker.models import AuditLog, ConsentEvent, Customer, OutboundMessage, ReviewItem, Station

REVIEW_BODY = "Dont text me at work"


def _open(session: Session, station: Station, customer: Customer, received: datetime | None = None) -> ReviewItem:
    msg = make_inbound(session, station, customer, REVIEW_BODY, received_at=received)
    handle_inbound(session, msg)
    return session.execute(select(ReviewItem).where(ReviewItem.message_id == msg.message_id)).scalar_one()


def _kinds(session: Session, customer: Customer) -> list[tuple[str, str]]:
    return [
        (e.kind, e.source)
        for e in session.execute(
            select(ConsentEvent).where(ConsentEvent.phone_index == customer.phone_index).order_by(ConsentEvent.seq)
        ).scalars()
    ]


def test_resolve_not_opt_out_lifts_the_pause(db_session: Session) -> None:
    """Resolving as not_opt_out records review_resolved, lifts pending_review and writes an audit row."""
    station = make_station(db_session)
    customer = make_customer(db_session, station)
    item = _open(db_session, station, customer)
    result = review.resolve(db_session, item.id, resolution="not_opt_out", actor=Actor.cli("alice"),
                            note="asked about a booking")
    assert result.item.status == "resolved_not_opt_out"
    assert result.opt_out is None
    assert result.resolved.event.evidence["resolved_by"] == "alice"
    assert _kinds(db_session, customer) == [("review_opened", "sms_phrase"), ("review_resolved", "staff")]
    assert customer.phone_index is not None
    state = covering_state(db_session, customer.phone_index, station.id)
    assert not state.pending_review
    assert not state.opted_out
    audit = db_session.execute(select(AuditLog).where(AuditLog.resource_id == str(item.id))).scalar_one()
    assert audit.actor == "cli:alice"
    assert audit.new_values is not None
    assert audit.new_values["status"] == "resolved_not_opt_out"


def test_resolve_opt_out_records_it_and_confirms(db_session: Session) -> None:
    """Resolving as opt_out records an opt_out, queues its one confirmation, and the ledger verifies."""
    station = make_station(db_session)
    customer = make_customer(db_session, station)
    item = _open(db_session, station, customer)
    result = review.resolve(db_session, item.id, resolution="opt_out", actor=Actor.cli("bob"),
                            note="reads as a revocation")
    assert result.item.status == "resolved_opt_out"
    assert result.opt_out is not None
    assert result.opt_out.moved_to_opted_out
    assert result.confirmation is not None
    assert result.confirmation.in_reply_to_event_id == result.opt_out.event.id
    assert customer.phone_index is not None
    assert covering_state(db_session, customer.phone_index, station.id).opted_out
    assert [k for k, _ in _kinds(db_session, customer)] == ["review_opened", "opt_out", "review_resolved"]
    with pytest.raises(review.ReviewError, match="already resolved_opt_out"):
        review.resolve(db_session, item.id, resolution="not_opt_out", actor=Actor.cli("bob"), note="again")
    assert verify_ledger(db_session).ok


def test_pause_stays_while_another_review_is_open(db_session: Session) -> None:
    """With two open items, resolving one keeps marketing paused until the other is resolved too."""
    station = make_station(db_session)
    customer = make_customer(db_session, station)
    first = _open(db_session, station, customer)
    second = _open(db_session, station, customer)
    assert customer.phone_index is not None
    review.resolve(db_session, first.id, resolution="not_opt_out", actor=Actor.cli("a"), note="n")
    assert covering_state(db_session, customer.phone_index, station.id).pending_review
    review.resolve(db_session, second.id, resolution="not_opt_out", actor=Actor.cli("a"), note="n")
    assert not covering_state(db_session, customer.phone_index, station.id).pending_review
    assert verify_ledger(db_session).ok


def test_list_open_nearest_deadline_first(db_session: Session) -> None:
    """list_open orders by deadline, so the most urgent item is read first."""
    station = make_station(db_session)
    late = _open(db_session, station, make_customer(db_session, station), datetime(2026, 3, 10, 15, tzinfo=UTC))
    early = _open(db_session, station, make_customer(db_session, station), datetime(2026, 3, 2, 15, tzinfo=UTC))
    ids = [item.id for item, _ in review.list_open(db_session)]
    assert ids.index(early.id) < ids.index(late.id)


def test_deadline_across_thanksgiving_then_expiry(db_session: Session) -> None:
    """Opened Fri 2025-11-21 (frozen clock): due 10 business days later, Thanksgiving skipped; then an opt-out."""
    station = make_station(db_session, timezone="America/New_York")
    customer = make_customer(db_session, station)
    with freeze_time("2025-11-21 20:00:00"):
        item = _open(db_session, station, customer)
    assert item.deadline_at == datetime(2025, 12, 8, 20, 0, tzinfo=UTC)
    # Further from the deadline than one tick period (5 min) plus the margin (1 min): nothing happens.
    assert review.expire_item(db_session, item.id, now=item.deadline_at - timedelta(minutes=6)) is None
    with capture_logs() as logs, freeze_time("2025-12-08 20:00:00"):
        near = review.near_deadline(db_session, now=item.deadline_at - timedelta(days=1))
        result = review.expire_item(db_session, item.id)
    assert [n.item_id for n in near] == [item.id]
    assert result is not None
    assert result.item.status == "expired_opt_out"
    assert result.opt_out is not None
    assert result.opt_out.event.source == "review_deadline"
    # The opt-out is dated when the person wrote, recorded when it was honoured.
    assert result.opt_out.event.occurred_at == datetime(2025, 11, 21, 20, 0, tzinfo=UTC)
    assert customer.phone_index is not None
    assert covering_state(db_session, customer.phone_index, station.id).opted_out
    events = {entry["event"]: entry for entry in logs}
    assert events["review_deadline_passed"]["log_level"] == "error"
    assert events["review_deadline_near"]["log_level"] == "warning"


def test_deadline_tick_expires_due_items_in_their_own_transactions(db_scope: SessionScope) -> None:
    """The beat tick's runner converts every overdue item (committed) and leaves the others open."""
    with db_scope() as session:
        station = make_station(session)
        overdue = _open(session, station, make_customer(session, station), datetime(2026, 1, 2, 15, tzinfo=UTC))
        fresh = _open(session, station, make_customer(session, station), datetime(2026, 3, 2, 15, tzinfo=UTC))
        overdue_id, fresh_id = overdue.id, fresh.id
    result = run_deadline_tick(now=datetime(2026, 3, 3, 15, tzinfo=UTC), scope=db_scope)
    assert result.expired == [overdue_id]
    assert result.failed == []
    with db_scope() as session:
        assert session.get(ReviewItem, overdue_id).status == "expired_opt_out"  # type: ignore[union-attr]
        assert session.get(ReviewItem, fresh_id).status == "open"  # type: ignore[union-attr]
        confirmations = session.execute(
            select(OutboundMessage).where(OutboundMessage.purpose == "compliance")
        ).scalars().all()
        assert len(confirmations) == 1
    again = run_deadline_tick(now=datetime(2026, 3, 3, 15, tzinfo=UTC), scope=db_scope)
    assert again.expired == []


def test_the_horizon_follows_the_beat_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The horizon is the expiry task's period in beat's schedule plus the margin: a slower tick acts earlier."""
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert BEAT_SCHEDULE["expire-reviews"]["task"] == "tasks.consent.expire_reviews"
    assert review.expiry_horizon(now) == now + timedelta(minutes=6)
    monkeypatch.setitem(BEAT_SCHEDULE["expire-reviews"], "schedule", 900.0)
    assert review.expiry_horizon(now) == now + timedelta(minutes=16)


def test_an_item_due_before_the_next_tick_plus_margin_is_converted_now(db_scope: SessionScope) -> None:
    """On the frozen clock the tick converts an item whose deadline is under 6 minutes away, and not one at 6."""
    with db_scope() as session:
        station = make_station(session, timezone="America/New_York")
        item = _open(session, station, make_customer(session, station), datetime(2026, 1, 2, 15, tzinfo=UTC))
        item_id, deadline = item.id, item.deadline_at
    horizon = timedelta(minutes=5) + timedelta(minutes=1)  # beat's 300 s period + the 60 s margin
    with freeze_time(deadline - horizon):
        assert run_deadline_tick(scope=db_scope).expired == []
    with db_scope() as session:
        assert session.get(ReviewItem, item_id).status == "open"  # type: ignore[union-attr]
    with capture_logs() as logs, freeze_time(deadline - horizon + timedelta(microseconds=1)):
        assert run_deadline_tick(scope=db_scope).expired == [item_id]
    with db_scope() as session:
        done = session.get(ReviewItem, item_id)
        assert done is not None
        assert done.status == "expired_opt_out"
        assert done.resolved_at is not None
        assert done.resolved_at < deadline
    (passed,) = [entry for entry in logs if entry["event"] == "review_deadline_passed"]
    assert passed["seconds_before_deadline"] == 360


def test_ticks_every_period_never_leave_an_item_open_past_its_deadline(db_scope: SessionScope) -> None:
    """Ticks every 5 minutes, each up to 59 s late, convert the item before its deadline, never after."""
    with db_scope() as session:
        station = make_station(session, timezone="America/New_York")
        item = _open(session, station, make_customer(session, station), datetime(2026, 1, 2, 15, tzinfo=UTC))
        item_id, deadline = item.id, item.deadline_at
    start = deadline - timedelta(minutes=31, seconds=17)
    converted_at: datetime | None = None
    for k, late in enumerate([0, 59, 3, 0, 58, 1, 59, 0, 30]):
        tick = start + k * timedelta(minutes=5) + timedelta(seconds=late)
        with freeze_time(tick):
            if run_deadline_tick(scope=db_scope).expired == [item_id]:
                converted_at = tick
                break
    assert converted_at is not None
    assert converted_at < deadline
