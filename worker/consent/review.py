"""The review queue: ambiguous messages a person must read ("is this a revocation?").

FCC 24-24 makes any reasonable means of revocation binding
(docs/compliance.md#revocation-by-any-reasonable-means), so a message the classifier cannot
call either way ("I need to cancel", "don't text me at work") is not ignored: it opens a
review item, marketing to the number pauses (consent_state.pending_review), and a person
resolves it as opt_out or not_opt_out.

The deadline is 10 business days after receipt (compliance.business_days, in the
station's time zone; docs/compliance.md#honouring-within-10-business-days): the legal limit
for honouring a revocation. An item still open at its deadline is converted into an opt-out
by the beat tick (``review_deadline_passed``, logged at error level), because the rule's
rebuttable presumption favours the consumer. The tick runs every few minutes, so it acts on
the items whose deadline falls before its next run plus a margin (``expiry_horizon``): an
item is converted up to one period early rather than up to one period late.
Items within CONSENT_REVIEW_WARN_BUSINESS_DAYS of their deadline are logged as
``review_deadline_near`` warnings on every tick.

Every resolution is a ledger event (review_resolved), preceded by an opt_out event when
resolved (or expired) as an opt-out, with its one confirmation text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from compliance.business_days import business_days_between, deadline_after
from compliance.consent_rules import Kind, Purpose, Source
from worker import audit, pii
from worker.audit import Actor
from worker.beat import BEAT_SCHEDULE
from worker.consent.effects import cancel_after_opt_out, queue_opt_out_confirmation
from worker.consent.ledger import RecordResult, record_event
from worker.errors import ErrorKind, UserError
from worker.locks import lock_number
from worker.models import (
    AuditAction,
    ConsentEvent,
    Message,
    MessageThread,
    OutboundMessage,
    ReviewItem,
    Station,
)
from worker.phone import PhoneNumber
from worker.settings import get_settings

__all__ = [
    "DEADLINE_ACTOR",
    "NearDeadline",
    "ResolveResult",
    "ReviewError",
    "due_item_ids",
    "expire_item",
    "expiry_horizon",
    "list_open",
    "near_deadline",
    "open_review",
    "resolve",
]

log = structlog.get_logger(__name__)

Resolution = Literal["opt_out", "not_opt_out"]

# The beat tick resolves overdue items on the rule's behalf (audit actor "system:review_deadline").
DEADLINE_ACTOR = Actor.beat("review_deadline")

# On top of the tick period: the next tick may start late (beat's own jitter, a busy worker
# queue) and takes time to convert what it found, one transaction per item.
EXPIRY_MARGIN = timedelta(seconds=60)


def expiry_horizon(now: datetime) -> datetime:
    """Items whose deadline falls before this are converted now: the next tick could be too late.

    The period is read from beat's schedule for the tick (worker/beat.py), so the two cannot drift.
    """
    period = timedelta(seconds=float(BEAT_SCHEDULE["expire-reviews"]["schedule"]))
    return now + period + EXPIRY_MARGIN


class ReviewError(UserError):
    """Raised when a review item cannot be resolved (unknown id, already resolved)."""


@dataclass(frozen=True, slots=True)
class ResolveResult:
    item: ReviewItem
    resolved: RecordResult
    opt_out: RecordResult | None
    confirmation: OutboundMessage | None


def open_review(
    session: Session,
    *,
    phone_e164: str | PhoneNumber,
    station: Station,
    scope_station_id: uuid.UUID | None,
    message_id: uuid.UUID | None,
    provider_message_id: str,
    received_at: datetime,
    classification: dict[str, Any],
    evidence: dict[str, Any],
) -> tuple[RecordResult, ReviewItem | None]:
    """Record review_opened and open the item (once per inbound message)."""
    result = record_event(
        session,
        phone_e164=phone_e164,
        kind=Kind.REVIEW_OPENED,
        purpose=Purpose.MARKETING,
        source=Source(evidence.get("source", Source.SMS_PHRASE)),
        evidence=evidence,
        occurred_at=received_at,
        station_id=scope_station_id,
        idempotency_key=f"sms:{provider_message_id}:review_opened",
    )
    if not result.created:
        return result, None
    settings = get_settings()
    deadline = deadline_after(received_at, settings.CONSENT_REVIEW_BUSINESS_DAYS, station.timezone)
    item = ReviewItem(
        phone_index=result.event.phone_index,
        phone_encrypted=result.event.phone_encrypted,
        station_id=station.id,
        message_id=message_id,
        classification=classification,
        status="open",
        deadline_at=deadline,
        opened_event_id=result.event.id,
    )
    session.add(item)
    session.flush()
    log.warning(
        "review_opened",
        review_item_id=str(item.id),
        event_id=str(result.event.id),
        station_id=str(station.id),
        deadline_at=deadline.isoformat(),
        rule=classification.get("rule"),
    )
    return result, item


def list_open(session: Session, *, limit: int | None = None) -> list[tuple[ReviewItem, Station | None]]:
    """Open items, nearest deadline first."""
    q = (
        select(ReviewItem, Station)
        .join(Station, Station.id == ReviewItem.station_id, isouter=True)
        .where(ReviewItem.status == "open")
        .order_by(ReviewItem.deadline_at, ReviewItem.created_at)
    )
    if limit is not None:
        q = q.limit(limit)
    return [(item, station) for item, station in session.execute(q)]


def _open_count(session: Session, phone_index: bytes, excluding: uuid.UUID) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(ReviewItem)
            .where(ReviewItem.phone_index == phone_index, ReviewItem.status == "open", ReviewItem.id != excluding)
        ).scalar_one()
    )


def resolve(
    session: Session,
    item_id: uuid.UUID,
    *,
    resolution: Resolution,
    actor: Actor,
    note: str | None = None,
    now: datetime | None = None,
    source: Source = Source.STAFF,
) -> ResolveResult:
    """Close an open item; as opt_out it also records the opt-out and queues its confirmation.

    ``actor`` is who decided: their name goes on the item and in the ledger evidence, and the
    one public.audit_logs row of the resolution is written in the caller's transaction.
    """
    if resolution not in ("opt_out", "not_opt_out"):
        raise ReviewError(f"resolution must be opt_out or not_opt_out, not {resolution!r}")
    now = now or datetime.now(UTC)
    peek = session.get(ReviewItem, item_id)
    if peek is None:
        raise ReviewError(f"no review item {item_id}", kind=ErrorKind.NOT_FOUND)
    # The number lock first (the order every consent writer uses), then the row.
    lock_number(session, peek.phone_index)
    item = session.execute(
        select(ReviewItem).where(ReviewItem.id == item_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    if item.status != "open":
        raise ReviewError(f"review item {item_id} is already {item.status}", kind=ErrorKind.CONFLICT)
    opened = (
        session.execute(select(ConsentEvent).where(ConsentEvent.id == item.opened_event_id)).scalar_one_or_none()
        if item.opened_event_id
        else None
    )
    scope = opened.station_id if opened is not None else None
    received_at = opened.occurred_at if opened is not None else item.created_at
    phone = pii.decrypt(item.phone_encrypted, kind="phone")
    common = {
        "review_item_id": item.id,
        "message_id": item.message_id,
        "resolution": resolution,
        "resolved_by": actor.name,
        "note": note,
        "deadline_at": item.deadline_at,
        "classification": item.classification,
    }
    opt_out: RecordResult | None = None
    confirmation: OutboundMessage | None = None
    if resolution == "opt_out":
        settings = get_settings()
        # occurred_at is when the person expressed it (the message); recorded_at is now.
        opt_out = record_event(
            session,
            phone_e164=phone,
            kind=Kind.OPT_OUT,
            purpose=settings.CONSENT_OPT_OUT_PURPOSE,
            source=source,
            evidence={**common, "opened_event_id": item.opened_event_id},
            occurred_at=received_at,
            station_id=scope,
            idempotency_key=f"review:{item.id}:opt_out",
        )
        keep: frozenset[uuid.UUID] = frozenset()
        if opt_out.moved_to_opted_out and item.station_id is not None:
            station = session.get(Station, item.station_id)
            if station is not None:
                customer_id, thread_id = _thread_of(session, item.message_id)
                confirmation = queue_opt_out_confirmation(
                    session,
                    station=station,
                    phone_e164=phone,
                    event_id=opt_out.event.id,
                    customer_id=customer_id,
                    thread_id=thread_id,
                    marketing_only=opt_out.event.purpose == Purpose.MARKETING,
                )
                keep = frozenset({confirmation.id})
        cancel_after_opt_out(session, item.phone_index, keep_ids=keep)
    resolved = record_event(
        session,
        phone_e164=phone,
        kind=Kind.REVIEW_RESOLVED,
        purpose=Purpose.MARKETING,
        source=source,
        evidence={**common, "open_reviews_remaining": _open_count(session, item.phone_index, item.id)},
        occurred_at=now,
        station_id=scope,
        idempotency_key=f"review:{item.id}:resolved",
    )
    if resolution == "not_opt_out":
        item.status = "resolved_not_opt_out"
    elif source == Source.REVIEW_DEADLINE:
        item.status = "expired_opt_out"
    else:
        item.status = "resolved_opt_out"
    item.resolved_event_id = resolved.event.id
    item.resolved_by = actor.name
    item.note = note
    item.resolved_at = now
    audit.record(
        session,
        actor,
        action=AuditAction.UPDATE,
        resource_type="review_item",
        resource_id=item.id,
        station_id=item.station_id,
        old_values={"status": "open"},
        new_values={
            "status": item.status,
            "resolved_event_id": str(resolved.event.id),
            "opt_out_event_id": str(opt_out.event.id) if opt_out else None,
        },
        reason=note,
    )
    session.flush()
    log.info(
        "review_resolved",
        review_item_id=str(item.id),
        status=item.status,
        resolved_event_id=str(resolved.event.id),
        opt_out_event_id=str(opt_out.event.id) if opt_out else None,
    )
    return ResolveResult(item=item, resolved=resolved, opt_out=opt_out, confirmation=confirmation)


def _thread_of(session: Session, message_id: uuid.UUID | None) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    if message_id is None:
        return None, None
    row = session.execute(
        select(MessageThread.customer_id, MessageThread.id)
        .join(Message, Message.thread_id == MessageThread.id)
        .where(Message.id == message_id)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def expire_item(session: Session, item_id: uuid.UUID, *, now: datetime | None = None) -> ResolveResult | None:
    """Convert one open item due by ``expiry_horizon(now)`` into an opt-out (None if not due / not open)."""
    now = now or datetime.now(UTC)
    item = session.get(ReviewItem, item_id)
    if item is None or item.status != "open" or item.deadline_at >= expiry_horizon(now):
        return None
    try:
        result = resolve(
            session,
            item.id,
            resolution="opt_out",
            actor=DEADLINE_ACTOR,
            note="unresolved at its business-day deadline; counted as an opt-out",
            now=now,
            source=Source.REVIEW_DEADLINE,
        )
    except ReviewError:
        # Resolved by a person (or another tick) while we waited for the lock.
        return None
    log.error(
        "review_deadline_passed",
        review_item_id=str(item.id),
        deadline_at=item.deadline_at.isoformat(),
        seconds_before_deadline=round((item.deadline_at - now).total_seconds()),
        station_id=str(item.station_id) if item.station_id else None,
        opt_out_event_id=str(result.opt_out.event.id) if result.opt_out else None,
        action="recorded as an opt-out (FCC 24-24: honour within 10 business days)",
    )
    return result


@dataclass(frozen=True, slots=True)
class NearDeadline:
    item_id: uuid.UUID
    deadline_at: datetime
    business_days_left: int


def near_deadline(session: Session, *, now: datetime | None = None) -> list[NearDeadline]:
    """Open items within the warning window, nearest first (each logged as a warning)."""
    now = now or datetime.now(UTC)
    warn = get_settings().CONSENT_REVIEW_WARN_BUSINESS_DAYS
    out: list[NearDeadline] = []
    for item, station in list_open(session):
        tz = station.timezone if station is not None else "America/New_York"
        left = business_days_between(now, item.deadline_at, tz)
        if item.deadline_at <= now or left > warn:
            continue
        out.append(NearDeadline(item.id, item.deadline_at, left))
        log.warning(
            "review_deadline_near",
            review_item_id=str(item.id),
            deadline_at=item.deadline_at.isoformat(),
            business_days_left=left,
        )
    return out


def due_item_ids(session: Session, *, now: datetime, limit: int = 200) -> list[uuid.UUID]:
    """Open items due before ``expiry_horizon(now)``, oldest deadline first (the beat tick expires each).

    The tick (tasks/consent.py) owns the transactions: one to read these, then one per item
    with expire_item, so one item's failure cannot undo or block the others.
    """
    return list(
        session.execute(
            select(ReviewItem.id)
            .where(ReviewItem.status == "open", ReviewItem.deadline_at < expiry_horizon(now))
            .order_by(ReviewItem.deadline_at)
            .limit(limit)
        ).scalars()
    )
