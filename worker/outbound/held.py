"""Texts held for review: outbox rows the gate could not place, and what a person does with them.

Quiet hours are judged where the recipient is (47 CFR 64.1200(c)(1);
docs/compliance.md#phone-numbers-and-time-zones), and a toll-free, invalid or otherwise
non-geographic number with no address on file says nothing about where that is. Rather than
guess, the gate holds marketing and campaign texts to such a number: the row is ``blocked``
with reason ``zone_unknown`` (compliance/gate.py). Until a person looks at it, it is "held":
listed by ``msgworker send held``.

A person then either

- releases it with the US state the recipient is in (they asked, or know the customer): the
  state, who gave it and when go on the row, and the row goes back to the outbox, pending and
  due now. Releasing sends nothing by itself: the gate decides again under the number's lock,
  so consent, the frequency cap and quiet hours are checked at that moment, in that state's
  zones and windows (plus the number's own zones, if it has any; the strictest wins), and the
  decision's basis names the staff source, the person and the time (worker/outbound/facts.py).
  Released late at night, the text waits for the state's next lawful minute; or
- cancels it (status ``cancelled``, reason ``review_cancelled``).

Each is one conditional UPDATE, so two people acting on the same row cannot both succeed, and
each writes an audit row (public.audit_logs) in the same transaction. A row is reviewed once:
releasing or cancelling it again, or a row that was never held, is an error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from compliance.gate import BlockReason
from compliance.phones import mask
from compliance.us_states import STATE_ZONES
from worker import audit, pii
from worker.audit import Actor
from worker.errors import ErrorKind, UserError
from worker.models import AuditAction, Campaign, OutboundMessage, Station

__all__ = [
    "CANCEL_REASON",
    "HELD_REASON",
    "HeldError",
    "HeldMessage",
    "ReviewResult",
    "cancel",
    "list_held",
    "release",
    "state_code",
]

log = structlog.get_logger(__name__)

HELD_REASON = BlockReason.ZONE_UNKNOWN.value
CANCEL_REASON = "review_cancelled"
STAFF = "staff"


class HeldError(UserError):
    """The row cannot be reviewed (not found, never held, already reviewed) or the input is bad."""


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A held row as staff see it: the number masked, the body's length only."""

    id: uuid.UUID
    station: str
    to: str
    purpose: str
    campaign: str | None
    created_at: datetime
    decided_at: datetime | None
    body_length: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "station": self.station,
            "to": self.to,
            "purpose": self.purpose,
            "campaign": self.campaign,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "body_length": self.body_length,
        }


@dataclass(frozen=True, slots=True)
class ReviewResult:
    id: uuid.UUID
    status: str
    not_before: datetime
    reviewed_at: datetime
    recipient_state: str | None


def _held() -> ColumnElement[bool]:
    """The held condition (the partial index ix_outbound_messages_held has the same predicate)."""
    return and_(
        OutboundMessage.status == "blocked",
        OutboundMessage.gate_reason == HELD_REASON,
        OutboundMessage.reviewed_at.is_(None),
    )


def state_code(value: str) -> str:
    """A USPS state, DC or territory code (compliance/us_states.py), upper-cased; HeldError otherwise."""
    code = value.strip().upper()
    if code not in STATE_ZONES:
        raise HeldError(f"{value!r} is not a US state code (e.g. TX, NY, DC, PR)")
    return code


def _reviewer(actor: Actor) -> str:
    name = actor.name.strip()
    if not name:
        raise HeldError("--by must name the person reviewing")
    if len(actor.label) > 200:  # the audit actor column holds at most 200 characters
        raise HeldError(f"--by is longer than {200 - (len(actor.label) - len(name))} characters")
    return name


def list_held(session: Session, *, station_code: str | None = None) -> list[HeldMessage]:
    """Held rows not yet reviewed, oldest first; HeldError for an unknown station code."""
    query = (
        select(
            OutboundMessage.id,
            Station.code,
            OutboundMessage.to_encrypted,
            OutboundMessage.purpose,
            Campaign.name,
            OutboundMessage.created_at,
            OutboundMessage.decided_at,
            func.length(OutboundMessage.body),
        )
        .join(Station, Station.id == OutboundMessage.station_id)
        .outerjoin(Campaign, Campaign.id == OutboundMessage.campaign_id)
        .where(_held())
        .order_by(OutboundMessage.created_at, OutboundMessage.id)
    )
    if station_code is not None:
        station_id = session.execute(
            select(Station.id).where(func.lower(Station.code) == station_code.strip().lower(),
                                     Station.deleted_at.is_(None))
        ).scalar_one_or_none()
        if station_id is None:
            raise HeldError(
                f"no station with code {station_code!r} (see `msgworker station list`)",
                kind=ErrorKind.NOT_FOUND,
            )
        query = query.where(OutboundMessage.station_id == station_id)
    return [
        HeldMessage(
            id=r[0],
            station=r[1],
            to=mask(pii.decrypt(r[2], kind="phone")),
            purpose=r[3],
            campaign=r[4],
            created_at=r[5],
            decided_at=r[6],
            body_length=int(r[7]),
        )
        for r in session.execute(query)
    ]


def release(
    session: Session, message_id: uuid.UUID, *, state: str, actor: Actor, note: str | None = None
) -> ReviewResult:
    """Place a held row's recipient in ``state`` (staff's word) and put it back in the outbox, due now."""
    code = state_code(state)
    return _review(
        session,
        message_id,
        actor=actor,
        note=note,
        values={"status": "pending", "not_before": func.now(), "recipient_state": code, "location_source": STAFF},
    )


def cancel(session: Session, message_id: uuid.UUID, *, actor: Actor, note: str | None = None) -> ReviewResult:
    """Cancel a held row: it will never be sent."""
    return _review(
        session, message_id, actor=actor, note=note, values={"status": "cancelled", "gate_reason": CANCEL_REASON}
    )


def _review(
    session: Session, message_id: uuid.UUID, *, actor: Actor, note: str | None, values: dict[str, Any]
) -> ReviewResult:
    by = _reviewer(actor)
    note = note.strip() if note and note.strip() else None
    stmt = (
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id, _held())
        .values(**values, reviewed_by=by, reviewed_at=func.now(), review_note=note, updated_at=func.now())
        .returning(
            OutboundMessage.id,
            OutboundMessage.station_id,
            OutboundMessage.status,
            OutboundMessage.not_before,
            OutboundMessage.reviewed_at,
            OutboundMessage.recipient_state,
        )
        .execution_options(synchronize_session=False)
    )
    done = session.execute(stmt).one_or_none()
    if done is None:
        raise _why_not_held(session, message_id)
    new_values: dict[str, Any] = {"status": done.status}
    if done.recipient_state is not None:
        new_values.update(recipient_state=done.recipient_state, location_source=STAFF)
    else:
        new_values["gate_reason"] = CANCEL_REASON
    audit.record(
        session,
        actor,
        action=AuditAction.UPDATE,
        resource_type="outbound_message",
        resource_id=done.id,
        station_id=done.station_id,
        old_values={"status": "blocked", "gate_reason": HELD_REASON},
        new_values=new_values,
        reason=note,
    )
    log.info(
        "held_message_released" if done.status == "pending" else "held_message_cancelled",
        message_id=str(done.id),
        recipient_state=done.recipient_state,
        reviewed_by=by,
    )
    return ReviewResult(done.id, done.status, done.not_before, done.reviewed_at, done.recipient_state)


def _why_not_held(session: Session, message_id: uuid.UUID) -> HeldError:
    found = session.execute(
        select(
            OutboundMessage.status,
            OutboundMessage.gate_reason,
            OutboundMessage.reviewed_by,
            OutboundMessage.reviewed_at,
            OutboundMessage.recipient_state,
        ).where(OutboundMessage.id == message_id)
    ).one_or_none()
    if found is None:
        return HeldError(f"no outbox message with id {message_id}", kind=ErrorKind.NOT_FOUND)
    if found.reviewed_at is not None:
        what = f"released (recipient in {found.recipient_state})" if found.recipient_state else "cancelled"
        return HeldError(
            f"message {message_id} was already reviewed: {what} by {found.reviewed_by} "
            f"at {found.reviewed_at.isoformat()}; it is now {found.status}",
            kind=ErrorKind.CONFLICT,
        )
    return HeldError(
        f"message {message_id} is not held for review (status {found.status}, "
        f"reason {found.gate_reason or '-'}); only rows blocked as {HELD_REASON} can be released or cancelled",
        kind=ErrorKind.CONFLICT,
    )
