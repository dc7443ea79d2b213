"""Delivery status callbacks applied to the outbox, and the undeliverable-number record.

Three entry points:

- ``record_callback``: status-callback ingest. Keeps every callback as a
  core.delivery_events row (deduplicated on (MessageSid, MessageStatus)) and moves the
  outbound row forward through compliance.delivery_status (never backwards).
- ``apply_pending_events``: for the send path, right after it stores a provider sid. A
  callback can beat the send path's commit of that sid; its event is then stored with no
  outbound row, and this picks it up.
- ``on_delivery_error``: a callback ErrorCode that says the number cannot take texts
  (30005, 30006, per compliance/twilio_errors.py) is recorded in
  compliance.undeliverable_numbers.

A ``failed``/``undelivered`` callback whose ErrorCode says the recipient opted out (21610:
compliance.twilio_errors.callback_reports_opt_out) records the same carrier opt-out as a
refused create (worker.consent.ledger.record_carrier_opt_out, ``reported_via
"status_callback"``), in the callback's transaction: once per number and scope, the
number's unsent rows cancelled. ``record_callback`` takes the number's lock before the sid's
and the row's (number before row, as every consent writer does). A callback applied late by
the send path (``apply_pending_events``) takes it after the row: no transaction holding a
number lock waits for a row in "sending", so that order cannot close a cycle.

Race between a callback and the send path storing the sid: both take the advisory lock
``LockNamespace.DELIVERY_SID`` on the sid before reading, so whichever commits second sees
the other's row (the callback finds the outbound row, or the send path finds the event).
The inbox sweeper also re-attaches orphaned events as a safety net (``attach_orphans``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from compliance.delivery_status import next_status, outbound_status_for
from compliance.twilio_errors import callback_reports_opt_out, classify_delivery_error
from worker import pii
from worker.consent.ledger import record_carrier_opt_out
from worker.locks import LockNamespace, lock, lock_number, text_key
from worker.models import DeliveryEvent, OutboundMessage, UndeliverableNumber
from worker.models.outbox import OutboxStatus

__all__ = [
    "CallbackOutcome",
    "apply_pending_events",
    "attach_orphans",
    "lock_sid",
    "on_delivery_error",
    "record_callback",
]

log = structlog.get_logger(__name__)

# Outbox statuses after the hand-off to Twilio: only these follow delivery callbacks. A
# callback for a row in "unknown" proves Twilio accepted it, which settles the row.
_FOLLOWS_DELIVERY = frozenset({*OutboxStatus.WENT_OUT, OutboxStatus.FAILED})


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    event_id: uuid.UUID | None  # None: this (sid, status) was already recorded
    outbound_id: uuid.UUID | None  # None: no outbound row has this sid (yet)
    delivery_status: str | None  # the outbound row's delivery status afterwards


def lock_sid(session: Session, provider_sid: str) -> None:
    """Serialise work on one provider sid (callback ingest vs. the send path)."""
    lock(session, LockNamespace.DELIVERY_SID, text_key(provider_sid))


def _record_opt_out(session: Session, outbound: OutboundMessage, error_code: int) -> None:
    result = record_carrier_opt_out(
        session,
        phone_e164=pii.decrypt(outbound.to_encrypted, kind="phone"),
        station_id=outbound.station_id,
        error_code=error_code,
        provider_ref=f"outbound:{outbound.id}",
        reported_via="status_callback",
        occurred_at=datetime.now(UTC),
        provider_sid=outbound.provider_sid,
    )
    log.info(
        "carrier_opt_out_from_callback",
        outbound_id=str(outbound.id),
        error_code=error_code,
        event_id=str(result.event.id),
        created=result.created,
    )


def _apply(session: Session, outbound: OutboundMessage, status: str, error_code: int | None) -> None:
    if error_code is not None and callback_reports_opt_out(status, error_code):
        _record_opt_out(session, outbound, error_code)
    new = next_status(outbound.delivery_status, status)
    if new != outbound.delivery_status:
        outbound.delivery_status = new
        if new == status and error_code is not None:
            outbound.error_code = error_code
        mapped = outbound_status_for(new) if new is not None else None
        if mapped is not None and outbound.status in _FOLLOWS_DELIVERY:
            outbound.status = OutboxStatus(mapped)
    if error_code is not None:
        on_delivery_error(session, outbound, error_code)


def record_callback(
    session: Session,
    *,
    provider_sid: str,
    status: str,
    error_code: int | None,
    raw: dict[str, str],
    inbox_id: uuid.UUID | None,
) -> CallbackOutcome:
    """Keep the callback as an event and apply it to its outbound row, once per (sid, status)."""
    if callback_reports_opt_out(status, error_code):
        # The ledger write needs the number's lock; take it before the sid's and the row's.
        to_index = session.execute(
            select(OutboundMessage.to_index).where(OutboundMessage.provider_sid == provider_sid)
        ).scalar_one_or_none()
        if to_index is not None:
            lock_number(session, to_index)
    lock_sid(session, provider_sid)
    outbound = session.execute(
        select(OutboundMessage).where(OutboundMessage.provider_sid == provider_sid).with_for_update()
    ).scalar_one_or_none()
    event_id = session.execute(
        insert(DeliveryEvent)
        .values(
            provider_sid=provider_sid,
            status=status,
            error_code=error_code,
            raw=raw,
            inbox_id=inbox_id,
            outbound_id=outbound.id if outbound is not None else None,
        )
        .on_conflict_do_nothing(index_elements=["provider_sid", "status"])
        .returning(DeliveryEvent.id)
    ).scalar_one_or_none()
    if event_id is None or outbound is None:
        if event_id is not None:
            log.info("delivery_event_orphan", provider_sid=provider_sid, status=status)
        return CallbackOutcome(
            event_id, outbound.id if outbound else None, outbound.delivery_status if outbound else None
        )
    _apply(session, outbound, status, error_code)
    session.flush()
    return CallbackOutcome(event_id, outbound.id, outbound.delivery_status)


def apply_pending_events(session: Session, outbound: OutboundMessage) -> int:
    """Apply callbacks stored before this row had its sid; returns how many were applied.

    The send path calls this in the transaction that stores ``outbound.provider_sid``,
    after setting it. It takes the sid lock itself; a caller that changes a row whose sid
    is already committed should call ``lock_sid`` first (lock order: sid, then row).
    """
    if not outbound.provider_sid:
        return 0
    session.flush()
    lock_sid(session, outbound.provider_sid)
    events = (
        session.execute(
            select(DeliveryEvent)
            .where(DeliveryEvent.provider_sid == outbound.provider_sid, DeliveryEvent.outbound_id.is_(None))
            .order_by(DeliveryEvent.received_at)
        )
        .scalars()
        .all()
    )
    for event in events:
        event.outbound_id = outbound.id
        _apply(session, outbound, event.status, event.error_code)
    if events:
        session.flush()
        log.info("delivery_events_applied_late", outbound_id=str(outbound.id), count=len(events))
    return len(events)


def attach_orphans(session: Session, *, limit: int = 500) -> int:
    """Attach events whose outbound row appeared later (safety net run by the sweeper)."""
    pairs = session.execute(
        text(
            "SELECT DISTINCT o.id, o.provider_sid FROM core.outbound_messages o"
            " JOIN core.delivery_events e ON e.provider_sid = o.provider_sid"
            " WHERE e.outbound_id IS NULL AND e.received_at > now() - interval '7 days'"
            " ORDER BY o.provider_sid LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
    applied = 0
    for outbound_id, provider_sid in pairs:
        # Same lock order as record_callback (sid, then row), so the two cannot deadlock.
        lock_sid(session, provider_sid)
        outbound = session.execute(
            select(OutboundMessage).where(OutboundMessage.id == outbound_id).with_for_update()
        ).scalar_one()
        applied += apply_pending_events(session, outbound)
    return applied


def on_delivery_error(session: Session, outbound: OutboundMessage, error_code: int) -> None:
    """Record the outbound row's number as unable to take texts, when the code says so.

    compliance/twilio_errors.py decides which codes blame the number (30005, 30006;
    docs/compliance.md#twilio-error-codes); others, such as 30003 (handset off, usually
    temporary), are ignored here.
    """
    if not classify_delivery_error(error_code).marks_number:
        return
    session.execute(
        insert(UndeliverableNumber)
        .values(phone_index=outbound.to_index, error_code=error_code, outbound_id=outbound.id)
        .on_conflict_do_update(
            index_elements=["phone_index"],
            set_={"error_code": error_code, "last_seen_at": func.now(), "outbound_id": outbound.id},
        )
    )
    log.info("number_marked_undeliverable", outbound_id=str(outbound.id), error_code=error_code)
