"""The one way in for outbound texts: a row in core.outbound_messages.

Whatever wants to send (an auto-reply, a consent confirmation, a campaign, a staff or API
send) calls ``enqueue``. Nothing here talks to Twilio: the release tick and the send task
(tasks/send.py) pick rows up, and the gate decides at send time, because consent may have
changed since the row was written.

The idempotency key is the database's unique key: the same key twice is one message, and
``enqueue`` returns the existing row the second time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from compliance.segments import count_segments
from worker import pii
from worker.errors import InvalidInput
from worker.models import Campaign, OutboundMessage, Station, StationSender
from worker.phone import PhoneNumber, as_number

__all__ = ["EnqueueError", "EnqueueResult", "cancel_pending_for_number", "enqueue"]

PURPOSES = frozenset({"transactional", "marketing", "compliance"})
# Rows not yet handed to the provider; an opt-out can still stop them.
CANCELLABLE = ("pending", "queued", "deferred")


class EnqueueError(InvalidInput):
    """Raised when a text cannot be queued as given (empty body, unknown purpose, bad key...)."""


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    message: OutboundMessage
    created: bool


def _recipient(to: str | PhoneNumber, channel: str) -> tuple[str, bytes]:
    """The stored ciphertext and blind index of ``to``.

    An SMS number is parsed to E.164 (InvalidNumber when it is none); a PhoneNumber (the
    consent engine's replies) is taken as it is, index and ciphertext already computed. A
    social channel's page-scoped id is not a number and is stored as given.
    """
    if isinstance(to, PhoneNumber) or channel == "sms":
        number = as_number(to)
        return number.encrypted, number.index
    return pii.encrypt(to, kind="phone"), pii.blind_index(to, kind="phone")


def enqueue(
    session: Session,
    *,
    station_id: uuid.UUID | None = None,
    station: Station | None = None,
    to: str | PhoneNumber,
    body: str,
    purpose: str,
    idempotency_key: str,
    not_before: datetime | None = None,
    channel: str = "sms",
    campaign_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    thread_id: uuid.UUID | None = None,
    in_reply_to_event_id: uuid.UUID | None = None,
    created_by: str | None = None,
    sender_id: uuid.UUID | None = None,
    campaign: Campaign | None = None,
) -> EnqueueResult:
    """Write (or find) the outbox row for this idempotency key.

    Give the station as ``station`` (a row) or ``station_id``; a campaign as ``campaign``
    or ``campaign_id``. ``to`` is normalised to E.164 here (InvalidNumber if it cannot
    be; a PhoneNumber is already); only its ciphertext and blind index are stored.
    ``not_before`` schedules the send; the gate still decides at send time.
    """
    if station is not None:
        if station_id is not None and station_id != station.id:
            raise EnqueueError("station and station_id disagree")
        station_id = station.id
    if station_id is None:
        raise EnqueueError("enqueue needs station or station_id")
    if campaign is not None:
        campaign_id = campaign.id
    if not_before is not None and not_before.tzinfo is None:
        raise EnqueueError("not_before must be timezone-aware")
    if purpose not in PURPOSES:
        raise EnqueueError(f"purpose must be one of {sorted(PURPOSES)}, not {purpose!r}")
    if not body or not body.strip():
        raise EnqueueError("body is empty")
    if len(body) > 1600:
        raise EnqueueError("body is longer than 1600 characters (Twilio's limit)")
    if not idempotency_key or len(idempotency_key) > 255:
        raise EnqueueError("idempotency_key must be 1..255 characters")
    to_encrypted, to_index = _recipient(to, channel)
    if sender_id is None:
        sender_id = session.execute(
            select(StationSender.id)
            .where(StationSender.station_id == station_id, StationSender.channel == channel,
                   StationSender.is_active.is_(True))
            .order_by(StationSender.created_at)
            .limit(1)
        ).scalar_one_or_none()
    values: dict[str, object] = {
        "idempotency_key": idempotency_key,
        "station_id": station_id,
        "sender_id": sender_id,
        "channel": channel,
        "customer_id": customer_id,
        "thread_id": thread_id,
        "to_encrypted": to_encrypted,
        "to_index": to_index,
        "body": body,
        "segments": count_segments(body).segments,
        "purpose": purpose,
        "campaign_id": campaign_id,
        "in_reply_to_event_id": in_reply_to_event_id,
        "created_by": created_by,
    }
    if not_before is not None:
        values["not_before"] = not_before
    inserted = session.execute(
        insert(OutboundMessage).values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboundMessage.id)
    ).scalar_one_or_none()
    row = session.execute(
        select(OutboundMessage).where(OutboundMessage.idempotency_key == idempotency_key)
    ).scalar_one()
    return EnqueueResult(message=row, created=inserted is not None)


def cancel_pending_for_number(
    session: Session, to_index: bytes, *, reason: str, keep_ids: frozenset[uuid.UUID] = frozenset()
) -> int:
    """Cancel every not-yet-sent row to this number (except ``keep_ids``); returns the count.

    Called in the same transaction that records an opt-out, so a row released later can
    never slip past it (the send task re-checks the gate anyway).
    """
    stmt = (
        update(OutboundMessage)
        .where(OutboundMessage.to_index == to_index, OutboundMessage.status.in_(CANCELLABLE))
        .values(status="cancelled", gate_reason=reason)
    )
    if keep_ids:
        stmt = stmt.where(OutboundMessage.id.notin_(keep_ids))
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
