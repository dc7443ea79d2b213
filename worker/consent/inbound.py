"""Inbound messages into consent events, replies and review items (called by ingest).

Runs inside ingest's transaction (worker/ingest/handlers.py calls ``handle_inbound``), after
the message row is written:
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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from compliance.consent_intake import Action, InboundDecision, decide
from compliance.consent_rules import Kind, Purpose
from compliance.errors import InvalidNumber
from compliance.keywords import Classification, classify
from worker.consent.effects import (
    KeywordReply,
    cancel_after_opt_out,
    queue_keyword_reply,
    queue_opt_out_confirmation,
)
from worker.consent.ledger import RecordResult, record_event
from worker.consent.review import open_review
from worker.consent.state import covering_state
from worker.locks import lock_number
from worker.models import OutboundMessage, Station
from worker.phone import PhoneNumber, as_number
from worker.settings import get_settings

__all__ = ["InboundMessage", "Intent", "handle_inbound", "is_inert", "read_intent"]

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
    message = replace(message, phone_e164=sender)
    intent = message.intent if message.intent is not None else read_intent(message.body, message.opt_out_type)
    classification, decision = intent.classification, intent.decision
    if decision.unknown_opt_out_type:
        log.warning(
            "unknown_opt_out_type", value=decision.unknown_opt_out_type[:16], message_id=str(message.message_id)
        )
    if decision.action == Action.NONE:
        return
    station = session.get(Station, message.station_id)
    if station is None:
        raise LookupError(f"station {message.station_id} of message {message.message_id} does not exist")
    evidence = _evidence(message, classification, decision)
    settings = get_settings()
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
    if decision.action == Action.OPT_OUT:
        _opt_out(session, message, station, decision, evidence, scope)
    elif decision.action == Action.OPT_IN:
        _opt_in(session, message, station, decision, evidence, scope)
    elif decision.action == Action.HELP:
        _help(session, message, station, decision, evidence)
    elif decision.action == Action.REVIEW:
        assert message.phone_e164 is not None
        open_review(
            session,
            phone_e164=message.phone_e164,
            station=station,
            scope_station_id=scope,
            message_id=message.message_id,
            provider_message_id=message.provider_message_id,
            received_at=message.received_at,
            classification=classification.as_evidence(),
            evidence=evidence,
        )


def _provider_reply_suppresses(decision: InboundDecision) -> bool:
    return decision.provider_replied and not get_settings().CONSENT_CONFIRM_WHEN_PROVIDER_REPLIED


def _record(
    session: Session, message: InboundMessage, kind: Kind, purpose: str, decision: InboundDecision,
    evidence: dict[str, Any], scope: Any,
) -> RecordResult:
    assert message.phone_e164 is not None
    assert decision.source is not None
    return record_event(
        session,
        phone_e164=message.phone_e164,
        kind=kind,
        purpose=purpose,
        source=decision.source,
        evidence=evidence,
        occurred_at=message.received_at,
        station_id=scope,
        idempotency_key=f"sms:{message.provider_message_id}:{kind.value}",
    )


def _opt_out(
    session: Session, message: InboundMessage, station: Station, decision: InboundDecision,
    evidence: dict[str, Any], scope: Any,
) -> None:
    purpose = Purpose.ALL if decision.scope_all else get_settings().CONSENT_OPT_OUT_PURPOSE
    assert message.phone_e164 is not None
    # Lock before reading "was this number already opted out here?", so the answer
    # cannot change before the event is recorded (record_event re-takes the same lock).
    index = as_number(message.phone_e164).index
    lock_number(session, index)
    before = covering_state(session, index, message.station_id)
    was_out = before.opted_out if purpose == Purpose.ALL else before.marketing_opted_out
    result = _record(session, message, Kind.OPT_OUT, purpose, decision, evidence, scope)
    if not result.created:
        return
    confirmation: OutboundMessage | None = None
    # One confirmation per opt-out as the person sees it: a STOPALL after a station STOP
    # (station scope) widens the opt-out but sends no second text.
    if was_out or not result.moved_to_opted_out:
        log.info("opt_out_confirmation_skipped", reason="already_opted_out", event_id=str(result.event.id))
    elif _provider_reply_suppresses(decision):
        log.info("opt_out_confirmation_skipped", reason="provider_replied", event_id=str(result.event.id))
    else:
        assert message.phone_e164 is not None
        confirmation = queue_opt_out_confirmation(
            session,
            station=station,
            phone_e164=message.phone_e164,
            event_id=result.event.id,
            customer_id=message.customer_id,
            thread_id=message.thread_id,
            marketing_only=result.event.purpose == Purpose.MARKETING,
        )
    cancel_after_opt_out(
        session, result.event.phone_index, keep_ids=frozenset({confirmation.id}) if confirmation else frozenset()
    )


def _opt_in(
    session: Session, message: InboundMessage, station: Station, decision: InboundDecision,
    evidence: dict[str, Any], scope: Any,
) -> None:
    result = _record(session, message, Kind.OPT_IN, Purpose.ALL, decision, evidence, scope)
    if not result.created:
        return
    now = covering_state(session, result.event.phone_index, message.station_id)
    _reply(
        session, message, station, decision, result, KeywordReply.START,
        skipped="opt_in_confirmation_skipped",
        # A narrower opt-in (station scope) does not lift a broader opt-out.
        refusals=((now.opted_out, "still_opted_out"), (not result.lifted_opt_out, "was_not_opted_out")),
    )  # fmt: skip


def _help(
    session: Session, message: InboundMessage, station: Station, decision: InboundDecision,
    evidence: dict[str, Any],
) -> None:
    # HELP changes nothing; recorded per station as evidence of the request.
    result = _record(session, message, Kind.HELP_REQUEST, Purpose.ALL, decision, evidence, message.station_id)
    if not result.created:
        return
    state = covering_state(session, result.event.phone_index, message.station_id)
    _reply(
        session, message, station, decision, result, KeywordReply.HELP,
        skipped="help_reply_skipped", refusals=((state.opted_out, "opted_out"),),
    )  # fmt: skip


def _reply(
    session: Session, message: InboundMessage, station: Station, decision: InboundDecision,
    result: RecordResult, reply: KeywordReply, *, skipped: str,
    refusals: tuple[tuple[bool, str], ...],
) -> None:
    """Queue a keyword's reply unless a refusal holds or Twilio's Advanced Opt-Out already answered."""
    for refused, reason in (*refusals, (_provider_reply_suppresses(decision), "provider_replied")):
        if refused:
            log.info(skipped, reason=reason, event_id=str(result.event.id))
            return
    assert message.phone_e164 is not None
    queue_keyword_reply(
        session,
        reply,
        station=station,
        phone_e164=message.phone_e164,
        event_id=result.event.id,
        provider_message_id=message.provider_message_id,
        customer_id=message.customer_id,
        thread_id=message.thread_id,
    )
