"""What follows a consent event in the same transaction: replies queued, unsent rows cancelled.

All replies are outbox rows with purpose "compliance" (worker.outbox); the send task's
gate lets a compliance row reach an opted-out number only when its
``in_reply_to_event_id`` is an opt-out event currently in force (consent_state
.opt_out_event_id), so the opt-out confirmation is the one message that can follow an
opt-out (FCC 24-24, 47 CFR 64.1200(a)(12); docs/compliance.md#opt-out-confirmation).

Idempotency keys make each reply once-only however often the inbound message is
redelivered: ``consent-confirm:<opt-out event id>``, ``consent-start:<provider message
id>``, ``consent-help:<provider message id>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import fields
from enum import Enum

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from compliance.consent_replies import help_reply, opt_in_confirmation, opt_out_confirmation
from worker.models import ConsentState, OutboundMessage, Station
from worker.outbox import CANCELLABLE, EnqueueResult, OutboxItem, cancel_pending_for_number, enqueue
from worker.phone import PhoneNumber

__all__ = [
    "KeywordReply",
    "cancel_after_opt_out",
    "cancel_after_opt_out_many",
    "keyword_reply_item",
    "opt_out_confirmation_item",
    "queue_opt_out_confirmation",
]

log = structlog.get_logger(__name__)


def cancel_after_opt_out(session: Session, phone_index: bytes, *, keep_ids: frozenset[uuid.UUID] = frozenset()) -> int:
    """Cancel the number's unsent rows, except the confirmation(s) of opt-outs in force.

    A repeated STOP arriving before the first confirmation went out must not cancel that
    confirmation: rows replying to a current ``opt_out_event_id`` are kept.
    """
    in_force = [
        e
        for e in session.execute(
            select(ConsentState.opt_out_event_id).where(
                ConsentState.phone_index == phone_index, ConsentState.opt_out_event_id.is_not(None)
            )
        ).scalars()
        if e is not None
    ]
    keep = set(keep_ids)
    if in_force:
        keep.update(
            session.execute(
                select(OutboundMessage.id).where(
                    OutboundMessage.to_index == phone_index,
                    OutboundMessage.purpose == "compliance",
                    OutboundMessage.in_reply_to_event_id.in_(in_force),
                )
            ).scalars()
        )
    count = cancel_pending_for_number(session, phone_index, reason="opted_out", keep_ids=frozenset(keep))
    if count:
        log.info("outbox_cancelled_after_opt_out", cancelled=count, kept=len(keep))
    return count


def cancel_after_opt_out_many(
    session: Session, phone_indexes: list[bytes], *, keep_ids: frozenset[uuid.UUID] = frozenset()
) -> int:
    """cancel_after_opt_out for many numbers in one statement (bulk import, grouped ingest).

    ``keep_ids``: rows kept besides the confirmations of opt-outs in force (the confirmations
    queued in the same transaction, as cancel_after_opt_out keeps them).
    """
    if not phone_indexes:
        return 0
    result = session.execute(
        text(
            "UPDATE core.outbound_messages AS o SET status = 'cancelled', gate_reason = 'opted_out', "
            "updated_at = now() "
            "WHERE o.to_index = ANY(:idx) AND o.status = ANY(:cancellable) AND o.id <> ALL(:keep) "
            "AND NOT (o.purpose = 'compliance' AND o.in_reply_to_event_id IN ("
            "  SELECT s.opt_out_event_id FROM compliance.consent_state AS s "
            "  WHERE s.phone_index = o.to_index AND s.opt_out_event_id IS NOT NULL))"
        ),
        {"idx": phone_indexes, "cancellable": [str(status) for status in CANCELLABLE], "keep": list(keep_ids)},
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        log.info("outbox_cancelled_after_opt_out", cancelled=count, numbers=len(phone_indexes))
    return count


def _enqueue(session: Session, item: OutboxItem) -> EnqueueResult:
    """``enqueue`` of one prepared item (the replies below are built once, queued alone or in bulk)."""
    return enqueue(session, **{f.name: getattr(item, f.name) for f in fields(item)})


def opt_out_confirmation_item(
    *,
    station: Station,
    phone_e164: str | PhoneNumber,
    event_id: uuid.UUID,
    channel: str = "sms",
    customer_id: uuid.UUID | None = None,
    thread_id: uuid.UUID | None = None,
    marketing_only: bool = False,
) -> OutboxItem:
    """The one opt-out confirmation of this event, as an outbox item (queue_opt_out_confirmation)."""
    return OutboxItem(
        station_id=station.id,
        to=phone_e164,
        body=opt_out_confirmation(station.brand_name, marketing_only=marketing_only),
        purpose="compliance",
        idempotency_key=f"consent-confirm:{event_id}",
        in_reply_to_event_id=event_id,
        channel=channel,
        customer_id=customer_id,
        thread_id=thread_id,
        created_by="system:consent",
    )


def queue_opt_out_confirmation(
    session: Session,
    *,
    station: Station,
    phone_e164: str | PhoneNumber,
    event_id: uuid.UUID,
    channel: str = "sms",
    customer_id: uuid.UUID | None = None,
    thread_id: uuid.UUID | None = None,
    marketing_only: bool = False,
) -> OutboundMessage:
    """The one opt-out confirmation: brand, no marketing, how to opt back in."""
    result = _enqueue(session, opt_out_confirmation_item(
        station=station, phone_e164=phone_e164, event_id=event_id, channel=channel, customer_id=customer_id,
        thread_id=thread_id, marketing_only=marketing_only,
    ))
    log.info("opt_out_confirmation_queued", outbound_id=str(result.message.id), event_id=str(event_id),
             created=result.created)
    return result.message


class KeywordReply(Enum):
    """The replies a keyword earns (value: the idempotency key's infix)."""

    START = "start"
    HELP = "help"


# reply -> (its body for the station, its log event)
_KEYWORD_REPLIES: dict[KeywordReply, tuple[Callable[[Station], str], str]] = {
    KeywordReply.START: (lambda st: opt_in_confirmation(st.brand_name), "opt_in_confirmation_queued"),
    KeywordReply.HELP: (lambda st: help_reply(st.brand_name, st.contact, st.help_text), "help_reply_queued"),
}


def keyword_reply_item(
    reply: KeywordReply,
    *,
    station: Station,
    phone_e164: str | PhoneNumber,
    event_id: uuid.UUID,
    provider_message_id: str,
    customer_id: uuid.UUID | None = None,
    thread_id: uuid.UUID | None = None,
) -> tuple[OutboxItem, str]:
    """(the START confirmation or the HELP reply as an outbox item, its log event), keyed by the
    inbound message, so a redelivered webhook queues nothing new."""
    body, log_event = _KEYWORD_REPLIES[reply]
    item = OutboxItem(
        station_id=station.id,
        to=phone_e164,
        body=body(station),
        purpose="compliance",
        idempotency_key=f"consent-{reply.value}:{provider_message_id}",
        in_reply_to_event_id=event_id,
        customer_id=customer_id,
        thread_id=thread_id,
        created_by="system:consent",
    )
    return item, log_event
