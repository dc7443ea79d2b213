"""The one way in for outbound texts: a row in core.outbound_messages.

Whatever wants to send (an auto-reply, a consent confirmation, a campaign, a staff or API
send) calls ``enqueue``. Nothing here talks to Twilio: the release tick and the send task
(tasks/send.py) pick rows up, and the gate decides at send time, because consent may have
changed since the row was written.

The idempotency key is the database's unique key: the same key twice is one message, and
``enqueue`` returns the existing row the second time.

A compliance text due now (an opt-out confirmation, a START or HELP reply: few, and the
confirmation has a deadline) is also handed to a send task when its transaction commits
(``send_at_commit``), rather than waiting for the next release tick: a tick runs once a
second, as a task behind whatever else the workers are doing, which made a confirmation wait
1-5 s on an idle system and 5-20 s under load (bench/RESULTS.md, issue 14 point 3). The row
stays "pending", so the release tick is still its fallback if that task is lost, and the send
task decides it like any other (gate, lock, rate limit); a second task for the same row finds
it taken or settled and does nothing. Other purposes wait for the tick, which paces a
campaign's rows per sender.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from compliance.errors import InvalidNumber
from compliance.gate import SendPurpose
from compliance.segments import count_segments
from worker import pii
from worker.after_commit import publish_after_commit
from worker.db import driver_connection
from worker.errors import InvalidInput, UserError
from worker.models import Campaign, OutboundMessage, Station, StationSender
from worker.models.outbox import OutboxStatus
from worker.phone import PhoneNumber, as_number
from worker.settings import get_settings

__all__ = [
    "SEND_TASK",
    "EnqueueError",
    "EnqueueResult",
    "OutboxItem",
    "cancel_pending_for_number",
    "enqueue",
    "enqueue_many",
    "send_at_commit",
]

# The send task's name (tasks/send.py; task names are a wire format).
SEND_TASK = "tasks.send.send_messages"

# Rows not yet handed to the provider; an opt-out can still stop them.
CANCELLABLE = OutboxStatus.CANCELLABLE
_PURPOSES = frozenset(p.value for p in SendPurpose)


class EnqueueError(InvalidInput):
    """Raised when a text cannot be queued as given (empty body, unknown purpose, bad key...)."""


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    message: OutboundMessage
    created: bool


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One text for ``enqueue_many`` (the same fields as ``enqueue``'s arguments)."""

    station_id: uuid.UUID
    to: str | PhoneNumber
    body: str
    purpose: str
    idempotency_key: str
    not_before: datetime | None = None
    channel: str = "sms"
    campaign_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    in_reply_to_event_id: uuid.UUID | None = None
    created_by: str | None = None


def _sender(session: Session, station_id: uuid.UUID, channel: str) -> uuid.UUID | None:
    return session.execute(
        select(StationSender.id)
        .where(StationSender.station_id == station_id, StationSender.channel == channel,
               StationSender.is_active.is_(True))
        .order_by(StationSender.created_at)
        .limit(1)
    ).scalar_one_or_none()


def _row_values(item: OutboxItem, sender_id: uuid.UUID | None) -> dict[str, object]:
    """The checked column values of one row (EnqueueError or InvalidNumber when it cannot be queued)."""
    if item.not_before is not None and item.not_before.tzinfo is None:
        raise EnqueueError("not_before must be timezone-aware")
    if item.purpose not in _PURPOSES:
        raise EnqueueError(f"purpose must be one of {sorted(_PURPOSES)}, not {item.purpose!r}")
    if not item.body or not item.body.strip():
        raise EnqueueError("body is empty")
    if len(item.body) > 1600:
        raise EnqueueError("body is longer than 1600 characters (Twilio's limit)")
    if not item.idempotency_key or len(item.idempotency_key) > 255:
        raise EnqueueError("idempotency_key must be 1..255 characters")
    to_encrypted, to_index = _recipient(item.to, item.channel)
    return {
        "idempotency_key": item.idempotency_key,
        "station_id": item.station_id,
        "sender_id": sender_id,
        "channel": item.channel,
        "customer_id": item.customer_id,
        "thread_id": item.thread_id,
        "to_encrypted": to_encrypted,
        "to_index": to_index,
        "body": item.body,
        "segments": count_segments(item.body).segments,
        "purpose": item.purpose,
        "campaign_id": item.campaign_id,
        "in_reply_to_event_id": item.in_reply_to_event_id,
        "created_by": item.created_by,
        "not_before": item.not_before,
    }


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
    if sender_id is None:
        sender_id = _sender(session, station_id, channel)
    values = _row_values(
        OutboxItem(
            station_id=station_id, to=to, body=body, purpose=purpose, idempotency_key=idempotency_key,
            not_before=not_before, channel=channel, campaign_id=campaign_id, customer_id=customer_id,
            thread_id=thread_id, in_reply_to_event_id=in_reply_to_event_id, created_by=created_by,
        ),
        sender_id,
    )
    if not_before is None:
        del values["not_before"]  # the column's default: the transaction's now()
    inserted = session.execute(
        insert(OutboundMessage).values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboundMessage.id)
    ).scalar_one_or_none()
    row = session.execute(
        select(OutboundMessage).where(OutboundMessage.idempotency_key == idempotency_key)
    ).scalar_one()
    if inserted is not None and purpose == SendPurpose.COMPLIANCE.value and not_before is None:
        send_at_commit(session, [inserted])
    return EnqueueResult(message=row, created=inserted is not None)


def enqueue_many(session: Session, items: Sequence[OutboxItem]) -> dict[str, uuid.UUID | UserError]:
    """``enqueue`` for many texts in one statement (a campaign's fan-out): {idempotency key: the
    row's id, new or existing; or the refusal of that one item, the others still queued}.

    Each item is checked exactly as ``enqueue`` checks it; an item without ``not_before`` is
    due at the transaction's now().
    """
    out: dict[str, uuid.UUID | UserError] = {}
    senders: dict[tuple[uuid.UUID, str], uuid.UUID | None] = {}
    rows: list[dict[str, object]] = []
    now: datetime | None = None
    for item in items:
        key = (item.station_id, item.channel)
        if key not in senders:
            senders[key] = _sender(session, item.station_id, item.channel)
        try:
            values = _row_values(item, senders[key])
        except (UserError, InvalidNumber) as exc:
            out[item.idempotency_key] = exc if isinstance(exc, UserError) else EnqueueError(str(exc), field="to")
            continue
        if values["not_before"] is None:
            if now is None:
                now = session.execute(select(func.now())).scalar_one()
            values["not_before"] = now
        rows.append(values)
    if not rows:
        return out
    # One statement over column arrays: per-row parameter handling cost more than the insert.
    # The arrays go in binary (``%(name)b`` on the session's own psycopg connection): psycopg's
    # text format quotes every element through a regular expression, ~35 ms for the 15 arrays
    # of 1,000 campaign texts, against ~3 ms in binary.
    arrays = {column: [r[column] for r in rows] for column in _MANY_COLUMNS}
    conn = driver_connection(session)
    inserted = dict(conn.execute(_INSERT_MANY, arrays).fetchall())
    out.update(inserted)
    due_now = {item.idempotency_key for item in items
               if item.purpose == SendPurpose.COMPLIANCE.value and item.not_before is None}
    send_at_commit(session, [row_id for key, row_id in inserted.items() if key in due_now])
    existing = [key for key in arrays["idempotency_key"] if key not in inserted]
    if existing:  # keys queued before (a redelivery, a re-run chunk): their rows' ids
        out.update(dict(conn.execute(_FIND_MANY, {"keys": existing}).fetchall()))
    return out


_MANY_COLUMNS = {
    "idempotency_key": "text", "station_id": "uuid", "sender_id": "uuid", "channel": "text", "customer_id": "uuid",
    "thread_id": "uuid", "to_encrypted": "text", "to_index": "bytea", "body": "text", "segments": "smallint",
    "purpose": "text", "campaign_id": "uuid", "in_reply_to_event_id": "uuid", "created_by": "text",
    "not_before": "timestamptz",
}
_INSERT_MANY = (
    f"INSERT INTO core.outbound_messages ({', '.join(_MANY_COLUMNS)}) "  # noqa: S608 - constant column names
    f"SELECT * FROM unnest({', '.join(f'CAST(%({c})b AS {t}[])' for c, t in _MANY_COLUMNS.items())}) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id"
)
_FIND_MANY = "SELECT idempotency_key, id FROM core.outbound_messages WHERE idempotency_key = ANY(%(keys)b)"


def send_at_commit(session: Session, ids: Sequence[uuid.UUID]) -> None:
    """Publish send tasks for these rows once the transaction commits (nothing if it, or the
    savepoint they were written in, rolls back); OUTBOUND_SEND_CHUNK ids a task."""
    chunk = get_settings().OUTBOUND_SEND_CHUNK
    for i in range(0, len(ids), chunk):
        publish_after_commit(session, SEND_TASK, message_ids=[str(x) for x in ids[i : i + chunk]])


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
        .values(status=OutboxStatus.CANCELLED, gate_reason=reason)
    )
    if keep_ids:
        stmt = stmt.where(OutboundMessage.id.notin_(keep_ids))
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
