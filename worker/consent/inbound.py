"""Inbound messages into consent events, replies and review items (called by ingest).

Runs inside ingest's transaction (worker/ingest/handlers.py calls ``handle_inbound``, or
``handle_inbound_many`` for the texts of a drain batch, one per number at a time), after the
message row is written:
the consent event, its state change, the cancelled outbox rows, the reply row and the
message all commit together, or none of them does (and the redelivered webhook retries).

Per message (compliance.consent_intake.decide merges our classifier and Twilio's
OptOutType):

- opt_out: record ``opt_out`` (scope: business-wide unless CONSENT_OPT_OUT_SCOPE is
  "station"; STOPALL always business-wide and purpose all). If it moved the number into
  opted-out (it was not opted out for the station texted), queue exactly one confirmation
  (unless Twilio's Advanced Opt-Out already replied and CONSENT_CONFIRM_WHEN_PROVIDER_REPLIED
  is off) and cancel every other unsent row to the number. A repeated STOP (or a STOPALL
  after a station STOP) is recorded, because it is evidence, but sends nothing.
- opt_in: record ``opt_in`` (same scope rule). Only an explicit opt-in keyword or
  Twilio's START gets here. If it lifted an opt-out, queue the START confirmation.
- help: record ``help_request``; reply with the station's HELP text unless the number is
  opted out (only the opt-out confirmation may reach an opted-out number) or Twilio
  already replied.
- review: record ``review_opened`` and open a review item (worker.consent.review).
- none: nothing.

Idempotency: every event key is ``sms:<MessageSid>:<kind>``, every reply key is derived
from the event or the MessageSid, so a redelivered webhook changes nothing.

Social channels (Messenger, Instagram) are out of scope of this SMS ledger: it is keyed
by phone number, and a PSID is not one. Those messages are logged and left alone here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from compliance.consent_intake import Action, InboundDecision, decide
from compliance.consent_rules import EffectiveConsent, Kind, Purpose
from compliance.errors import InvalidNumber
from compliance.keywords import Classification, classify
from worker.consent.effects import (
    KeywordReply,
    cancel_after_opt_out_many,
    keyword_reply_item,
    opt_out_confirmation_item,
)
from worker.consent.ledger import EventInput, Outcome, record_events
from worker.consent.review import open_review
from worker.consent.state import covering, state_rows
from worker.models import Station
from worker.outbox import OutboxItem, enqueue_many
from worker.phone import PhoneNumber, as_number
from worker.settings import Settings, get_settings

__all__ = ["InboundMessage", "Intent", "handle_inbound", "handle_inbound_many", "is_inert", "read_intent"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    station_id: uuid.UUID
    customer_id: uuid.UUID
    thread_id: uuid.UUID
    message_id: uuid.UUID
    channel: str  # "sms" | "facebook" | "instagram"
    # The sender's number (SMS): as ingest parsed it, or a string parsed here; None on social
    # channels.
    phone_e164: str | PhoneNumber | None
    # Our address the message was sent to (the station's number or page id).
    to_address: str
    body: str
    provider_message_id: str
    # Twilio Advanced Opt-Out's verdict ("STOP" | "START" | "HELP"), when present.
    opt_out_type: str | None
    messaging_service_sid: str | None
    received_at: datetime
    # read_intent(body, opt_out_type), when ingest has read it already; None: read here.
    intent: Intent | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """What an inbound text asks of the consent engine: its classification, and the decision
    that merges it with Twilio's OptOutType.

    Ingest reads it while preparing a row, to know whether the row is consent-inert, and hands
    the same value to handle_inbound, so a text is classified and decided once.
    """

    classification: Classification
    decision: InboundDecision

    @property
    def inert(self) -> bool:
        """From an SMS number, ``handle_inbound`` would neither write, read nor log anything."""
        return self.decision.action == Action.NONE and not self.decision.unknown_opt_out_type


def read_intent(body: str | None, opt_out_type: str | None) -> Intent:
    """Classify the body and decide (pure: no database, no settings)."""
    classification = classify(body or "")
    return Intent(classification, decide(classification, opt_out_type))


def _evidence(msg: InboundMessage, classification: Classification, decision: InboundDecision) -> dict[str, Any]:
    return {
        "provider_message_id": msg.provider_message_id,
        "message_id": msg.message_id,
        "received_station_id": msg.station_id,
        "channel": msg.channel,
        "to_address": msg.to_address,
        "messaging_service_sid": msg.messaging_service_sid,
        "raw_body": msg.body,
        "opt_out_type": msg.opt_out_type,
        "classification": classification.as_evidence(),
        "source": decision.source.value if decision.source else None,
        "received_at": msg.received_at,
    }


def is_inert(*, channel: str, phone_e164: str | None, body: str | None, opt_out_type: str | None) -> bool:
    """True when ``handle_inbound`` would neither write, read nor log anything for this message.

    Pure (no database): ingest asks before it stores the message, and applies the rows for
    which this is true together, without a consent call each (worker/ingest/drain.py). It
    mirrors handle_inbound's early returns and is conservative: anything that would reach
    the database or the log (a keyword, an OptOutType, an unknown OptOutType, a sender that
    is not a number, a social channel) is not inert. Ingest, which has parsed the sender
    already, asks ``read_intent(...).inert`` and keeps the Intent for handle_inbound.
    """
    return isinstance(_sender(channel, phone_e164), PhoneNumber) and read_intent(body, opt_out_type).inert


def _sender(channel: str, phone_e164: str | PhoneNumber | None) -> PhoneNumber | str:
    """The sender's number, or why this SMS ledger has nothing to do with the sender."""
    if channel != "sms" or not phone_e164:
        return "not_sms"
    try:
        return as_number(phone_e164)
    except InvalidNumber as exc:
        return str(exc)


def handle_inbound(session: Session, message: InboundMessage) -> None:
    """Classify the message and record whatever consent it expresses (see module docstring)."""
    sender = _sender(message.channel, message.phone_e164)
    if sender == "not_sms":
        log.info("consent_not_applicable", channel=message.channel, message_id=str(message.message_id))
        return
    if not isinstance(sender, PhoneNumber):
        # An alphanumeric or malformed sender: nothing can be sent to it either (the outbox
        # normalises the same way), so there is nothing to record or block. Logged, not raised,
        # so ingest does not retry the message forever.
        log.warning("consent_sender_not_a_phone_number", message_id=str(message.message_id), reason=sender)
        return
    # From here on the sender is the parsed number: the ledger and the outbox take it as it is,
    # with its blind index and ciphertext computed once (worker/phone.py).
    handle_inbound_many(session, [replace(message, phone_e164=sender)])


@dataclass(frozen=True, slots=True)
class _Planned:
    """A text the consent engine acts on, with what it will record."""

    message: InboundMessage
    sender: PhoneNumber
    station: Station
    intent: Intent
    scope: uuid.UUID | None  # the event's scope (None: business-wide)
    event: EventInput | None  # None for a review: open_review records its own event

    @property
    def action(self) -> Action:
        return self.intent.decision.action


def handle_inbound_many(session: Session, messages: Sequence[InboundMessage]) -> None:
    """``handle_inbound`` for SMS texts from different numbers, with their statements shared.

    Grouped ingest (worker/ingest/handlers.py) calls it for one text per number at a time, with
    the numbers' locks already held. The texts' events are recorded by one ``record_events``
    (one lock statement for all the numbers, one idempotency read, one chain-head read, one
    insert, one state upsert), the state after them read once, every reply queued by one
    ``enqueue_many`` and every opt-out's cancellations made by one statement; review items
    (rare) are opened one by one. For each text the outcome is what ``handle_inbound`` alone
    would give: the numbers differ, and nothing written for one number is read for another.

    Every message must come from a phone number (``handle_inbound`` filters the others out),
    and at most one from each number: ValueError otherwise.
    """
    settings = get_settings()
    planned: list[_Planned] = []
    numbers: set[bytes] = set()
    for message in messages:
        sender = _sender(message.channel, message.phone_e164)
        if not isinstance(sender, PhoneNumber):
            raise ValueError(f"handle_inbound_many takes SMS texts from phone numbers ({message.message_id})")
        if sender.index in numbers:
            raise ValueError("handle_inbound_many takes at most one text per number (their order matters)")
        numbers.add(sender.index)
        plan = _plan(session, replace(message, phone_e164=sender), sender, settings)
        if plan is not None:
            planned.append(plan)
    recorded = [p for p in planned if p.event is not None]
    outcomes = record_events(session, [p.event for p in recorded if p.event is not None])
    # Under the locks record_events took: each number's rows as they are after its event.
    after = state_rows(session, [p.sender.index for p in recorded])
    replies: list[tuple[OutboxItem, str]] = []
    opted_out: list[bytes] = []
    for plan, outcome in zip(recorded, outcomes, strict=True):
        event = plan.event
        assert event is not None
        log.info("consent_event_recorded" if outcome.created else "consent_event_duplicate",
                 event_id=str(outcome.event_id), kind=event.kind, purpose=event.purpose, source=event.source,
                 scope="business" if event.station_id is None else "station")
        if not outcome.created:
            continue
        rows_after = after.get(plan.sender.index, {})
        # Just before the event: the rows it changed as they were, the others as they are.
        rows_before = {**rows_after, **outcome.before}
        reply = _reply_for(plan, outcome, covering(rows_before, plan.message.station_id),
                           covering(rows_after, plan.message.station_id))
        if reply is not None:
            replies.append(reply)
        if plan.action == Action.OPT_OUT:
            opted_out.append(plan.sender.index)
    queued = enqueue_many(session, [item for item, _ in replies])
    keep: set[uuid.UUID] = set()
    for item, log_event in replies:
        result = queued[item.idempotency_key]
        if isinstance(result, Exception):
            raise result
        log.info(log_event, outbound_id=str(result), event_id=str(item.in_reply_to_event_id))
        keep.add(result)
    # Every other unsent row to an opted-out number, except the confirmations just queued and
    # those of opt-outs in force (a repeated STOP must not cancel the first one's confirmation).
    cancel_after_opt_out_many(session, opted_out, keep_ids=frozenset(keep))
    for plan in planned:
        if plan.event is None:
            _open_review(session, plan)


def _plan(session: Session, message: InboundMessage, sender: PhoneNumber, settings: Settings) -> _Planned | None:
    """What this text records, or None when the consent engine does nothing with it."""
    intent = message.intent if message.intent is not None else read_intent(message.body, message.opt_out_type)
    classification, decision = intent.classification, intent.decision
    if decision.unknown_opt_out_type:
        log.warning(
            "unknown_opt_out_type", value=decision.unknown_opt_out_type[:16], message_id=str(message.message_id)
        )
    if decision.action == Action.NONE:
        return None
    station = session.get(Station, message.station_id)
    if station is None:
        raise LookupError(f"station {message.station_id} of message {message.message_id} does not exist")
    business_wide = decision.scope_all or settings.CONSENT_OPT_OUT_SCOPE == "business"
    scope = None if business_wide else message.station_id
    log.info(
        "consent_intent",
        action=decision.action.value,
        source=decision.source.value if decision.source else None,
        rule=classification.rule,
        scope="business" if scope is None else "station",
        message_id=str(message.message_id),
    )
    event: EventInput | None = None
    if decision.action != Action.REVIEW:
        kind, purpose, event_scope = {
            Action.OPT_OUT: (Kind.OPT_OUT, Purpose.ALL if decision.scope_all else settings.CONSENT_OPT_OUT_PURPOSE,
                             scope),
            Action.OPT_IN: (Kind.OPT_IN, Purpose.ALL, scope),
            # HELP changes nothing; recorded per station as evidence of the request.
            Action.HELP: (Kind.HELP_REQUEST, Purpose.ALL, message.station_id),
        }[decision.action]
        assert decision.source is not None
        event = EventInput.for_phone(
            sender,
            kind=kind,
            purpose=purpose,
            source=decision.source,
            evidence=_evidence(message, classification, decision),
            occurred_at=message.received_at,
            station_id=event_scope,
            idempotency_key=f"sms:{message.provider_message_id}:{kind.value}",
        )
    return _Planned(message, sender, station, intent, scope, event)


def _reply_for(
    plan: _Planned, outcome: Outcome, before: EffectiveConsent, now: EffectiveConsent
) -> tuple[OutboxItem, str] | None:
    """The reply a newly recorded event earns (with its log event), or None (the skip is logged).

    ``before`` and ``now``: what covers the station texted, just before and just after the event.
    """
    message, decision = plan.message, plan.intent.decision
    if plan.action == Action.OPT_OUT:
        assert plan.event is not None
        purpose = plan.event.purpose
        was_out = before.opted_out if purpose == Purpose.ALL else before.marketing_opted_out
        # One confirmation per opt-out as the person sees it: a STOPALL after a station STOP
        # (station scope) widens the opt-out but sends no second text.
        if was_out or not outcome.moved_to_opted_out:
            log.info("opt_out_confirmation_skipped", reason="already_opted_out", event_id=str(outcome.event_id))
            return None
        if _provider_reply_suppresses(decision):
            log.info("opt_out_confirmation_skipped", reason="provider_replied", event_id=str(outcome.event_id))
            return None
        item = opt_out_confirmation_item(
            station=plan.station, phone_e164=plan.sender, event_id=outcome.event_id,
            customer_id=message.customer_id, thread_id=message.thread_id,
            marketing_only=purpose == Purpose.MARKETING,
        )  # fmt: skip
        return item, "opt_out_confirmation_queued"
    if plan.action == Action.OPT_IN:
        # A narrower opt-in (station scope) does not lift a broader opt-out.
        reply, skipped = KeywordReply.START, "opt_in_confirmation_skipped"
        refusals: tuple[tuple[bool, str], ...] = (
            (now.opted_out, "still_opted_out"), (not outcome.lifted_opt_out, "was_not_opted_out"),
        )
    else:
        reply, skipped = KeywordReply.HELP, "help_reply_skipped"
        refusals = ((now.opted_out, "opted_out"),)
    for refused, reason in (*refusals, (_provider_reply_suppresses(decision), "provider_replied")):
        if refused:
            log.info(skipped, reason=reason, event_id=str(outcome.event_id))
            return None
    return keyword_reply_item(
        reply, station=plan.station, phone_e164=plan.sender, event_id=outcome.event_id,
        provider_message_id=message.provider_message_id, customer_id=message.customer_id,
        thread_id=message.thread_id,
    )  # fmt: skip


def _open_review(session: Session, plan: _Planned) -> None:
    message, classification = plan.message, plan.intent.classification
    open_review(
        session,
        phone_e164=plan.sender,
        station=plan.station,
        scope_station_id=plan.scope,
        message_id=message.message_id,
        provider_message_id=message.provider_message_id,
        received_at=message.received_at,
        classification=classification.as_evidence(),
        evidence=_evidence(message, classification, plan.intent.decision),
    )


def _provider_reply_suppresses(decision: InboundDecision) -> bool:
    return decision.provider_replied and not get_settings().CONSENT_CONFIRM_WHEN_PROVIDER_REPLIED
