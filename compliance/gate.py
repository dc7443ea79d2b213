"""The send gate: facts in, a decision out (allowed, blocked with a reason, or deferred).

``evaluate_send(facts, now, policy)`` is a pure function. The worker gathers the facts under
the per-number lock (worker/outbound/facts.py), calls this, and commits the decision with its
basis before Twilio is called, so every text can be justified afterwards.

Rules, in the order they are checked (the first that fails decides; a block always wins
over a deferral, so nothing is postponed that would be refused anyway):

1. ``not_textable``: a provider said the number cannot take texts (21211, 21614, 21635,
   30005, 30006; compliance/twilio_errors.py).
2. ``opted_out``: an opt-out in any scope covering the send (the business-wide row or this
   station's; consent_rules.combine) blocks every purpose. The one exception is the single
   confirmation (47 CFR 64.1200(a)(12), docs/compliance.md#opt-out-confirmation): a
   ``compliance`` message that replies to the opt-out event in force, when no confirmation for
   it went out yet (``confirmation_already_sent``). If two scopes are out on different events,
   nothing passes: the person was already opted out, and a second confirmation would be a
   second message after an opt-out.
3. Marketing: ``marketing_opted_out``; ``no_marketing_consent`` (prior express written
   consent must be on record, §64.1200(f)(9)); ``pending_review`` (an ambiguous reply waits
   for a person); ``frequency_cap`` (at most N marketing texts per number per rolling 24 h
   across all campaigns; FL/OK/MD allow 3: docs/compliance.md#frequency-caps).
4. Transactional: ``no_relationship`` (a booking or an inbound message must exist).
5. Quiet hours, for marketing and every campaign message (transactional and compliance
   messages only when the policy says so): the recipient's local time in every candidate
   zone must be inside every applicable window (compliance/quiet_hours.py). Outside it, the
   decision is ``deferred`` to the next lawful minute, never earlier. A recipient we cannot
   place (toll-free, invalid, no address) is ``zone_unknown``: held for review, not sent,
   until staff give the state the recipient is in (worker/outbound/held.py; the location then
   says so) or cancel it. If no common window exists within the horizon (zones too far
   apart), ``no_lawful_window``.
6. ``inbox_pending``: a text from the number is still waiting in the durable inbox (received
   and acknowledged, not yet applied by ingest; it may be a STOP). Every send that would be
   allowed is ``deferred`` a moment (``GatePolicy.inbox_pending_delay``) and decided again
   once ingest has applied it, so nothing is sent on consent that an acknowledged message may
   already have revoked (docs/outbound.md). The one opt-out confirmation is exempt: it is the
   one text the law allows after a STOP, and it has a deadline of its own.

The basis names the consent events relied on (the rows' last events, the opt-out or the
marketing consent) and the rules checked, so a report can show why each text went out.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from compliance.consent_rules import ConsentSnapshot, EffectiveConsent, combine
from compliance.quiet_hours import next_lawful_minute
from compliance.recipient import RecipientLocation

__all__ = [
    "BlockReason",
    "GatePolicy",
    "Outcome",
    "SendDecision",
    "SendFacts",
    "SendPurpose",
    "evaluate_send",
]


class SendPurpose(enum.StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"
    # Opt-out confirmations, opt-in confirmations, HELP replies.
    COMPLIANCE = "compliance"


class Outcome(enum.StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    DEFERRED = "deferred"


class BlockReason(enum.StrEnum):
    NOT_TEXTABLE = "not_textable"
    OPTED_OUT = "opted_out"
    CONFIRMATION_ALREADY_SENT = "confirmation_already_sent"
    MARKETING_OPTED_OUT = "marketing_opted_out"
    NO_MARKETING_CONSENT = "no_marketing_consent"
    PENDING_REVIEW = "pending_review"
    FREQUENCY_CAP = "frequency_cap"
    NO_RELATIONSHIP = "no_relationship"
    ZONE_UNKNOWN = "zone_unknown"
    NO_LAWFUL_WINDOW = "no_lawful_window"
    # Reasons of a deferral (outcome DEFERRED), not of a block.
    QUIET_HOURS = "quiet_hours"
    INBOX_PENDING = "inbox_pending"


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """Operator-tunable parts of the gate (worker.settings builds one)."""

    marketing_cap_per_24h: int = 3
    quiet_hours_for_transactional: bool = False
    quiet_hours_for_compliance: bool = False
    # A window is treated as ending this much early: room for Twilio's queue.
    quiet_hours_end_margin: timedelta = timedelta(minutes=1)
    horizon: timedelta = timedelta(days=14)
    # How long a send waits when a text from the number is still in the inbox (about one
    # release tick: ingest applies a text within milliseconds when it is running).
    inbox_pending_delay: timedelta = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class SendFacts:
    """Everything the gate looks at, read under the per-number lock."""

    purpose: SendPurpose
    location: RecipientLocation
    is_campaign: bool = False
    in_reply_to_event_id: uuid.UUID | None = None
    # consent_state rows covering the send: business-wide and this station's (None = no row).
    business: ConsentSnapshot | None = None
    station: ConsentSnapshot | None = None
    # Another outbox row replying to in_reply_to_event_id already went (or may have gone) out.
    confirmation_already_sent: bool = False
    # A booking or an inbound message from this number exists (transactional texts need one).
    has_relationship: bool = False
    # Marketing texts decided for this number in the last 24 h, across stations and campaigns.
    marketing_sent_last_24h: int = 0
    # A provider error code that marked this number undeliverable, if any.
    undeliverable_code: int | None = None
    # A text from this number is in the inbox, received and acknowledged but not yet applied.
    inbox_pending: bool = False


@dataclass(frozen=True, slots=True)
class SendDecision:
    outcome: Outcome
    reason: BlockReason | None = None
    defer_until: datetime | None = None
    # Consent event ids the decision relied on.
    basis: tuple[uuid.UUID, ...] = ()
    # Rules checked, in order, each "name" (passed), "name:exempt" or "name:failed".
    rules: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "reason": self.reason.value if self.reason else None,
            "defer_until": self.defer_until.isoformat() if self.defer_until else None,
            "events": [str(e) for e in self.basis],
            "rules": list(self.rules),
        }


def _dedupe(ids: list[uuid.UUID | None]) -> tuple[uuid.UUID, ...]:
    return tuple(dict.fromkeys(i for i in ids if i is not None))


def evaluate_send(facts: SendFacts, now: datetime, policy: GatePolicy | None = None) -> SendDecision:
    """Decide one send. ``now`` must be timezone-aware."""
    policy = policy or GatePolicy()
    consent = combine(facts.business, facts.station)
    rules: list[str] = []
    basis: list[uuid.UUID | None] = list(consent.basis_event_ids)

    def block(reason: BlockReason, *extra: uuid.UUID | None) -> SendDecision:
        rules.append(f"{reason.value}:failed")
        return SendDecision(Outcome.BLOCKED, reason, None, _dedupe([*extra, *basis]), tuple(rules))

    if facts.undeliverable_code is not None:
        return block(BlockReason.NOT_TEXTABLE)
    rules.append("textable")

    if consent.opted_out:
        return _opted_out(facts, consent, rules, basis, block)
    rules.append("not_opted_out")

    if facts.purpose is SendPurpose.MARKETING:
        if consent.marketing_opted_out:
            return block(BlockReason.MARKETING_OPTED_OUT, *sorted(consent.opt_out_event_ids, key=str))
        rules.append("not_marketing_opted_out")
        if not consent.marketing_consent:
            return block(BlockReason.NO_MARKETING_CONSENT)
        basis.insert(0, consent.marketing_consent_event_id)
        rules.append("marketing_consent")
        if consent.pending_review:
            return block(BlockReason.PENDING_REVIEW)
        rules.append("no_pending_review")
        if facts.marketing_sent_last_24h >= policy.marketing_cap_per_24h:
            return block(BlockReason.FREQUENCY_CAP)
        rules.append(f"frequency_cap<{policy.marketing_cap_per_24h}")
    elif facts.purpose is SendPurpose.TRANSACTIONAL:
        if not facts.has_relationship:
            return block(BlockReason.NO_RELATIONSHIP)
        rules.append("relationship")

    if not _quiet_hours_apply(facts, policy):
        rules.append("quiet_hours:exempt")
        return _allow(facts, now, policy, rules, basis)
    if not facts.location.known:
        return block(BlockReason.ZONE_UNKNOWN)
    lawful = next_lawful_minute(
        now,
        facts.location.zones,
        facts.location.states,
        end_margin=policy.quiet_hours_end_margin,
        horizon=policy.horizon,
    )
    if lawful is None:
        return block(BlockReason.NO_LAWFUL_WINDOW)
    if lawful != now:
        rules.append("quiet_hours:deferred")
        return SendDecision(Outcome.DEFERRED, BlockReason.QUIET_HOURS, lawful, _dedupe(basis), tuple(rules))
    rules.append("quiet_hours")
    return _allow(facts, now, policy, rules, basis)


def _allow(
    facts: SendFacts, now: datetime, policy: GatePolicy, rules: list[str], basis: list[uuid.UUID | None]
) -> SendDecision:
    """Allowed by every rule above, unless the inbox holds a text from the number not yet applied."""
    if facts.inbox_pending:
        rules.append("inbox_pending:deferred")
        until = now + policy.inbox_pending_delay
        return SendDecision(Outcome.DEFERRED, BlockReason.INBOX_PENDING, until, _dedupe(basis), tuple(rules))
    rules.append("inbox_clear")
    return SendDecision(Outcome.ALLOWED, None, None, _dedupe(basis), tuple(rules))


def _opted_out(
    facts: SendFacts,
    consent: EffectiveConsent,
    rules: list[str],
    basis: list[uuid.UUID | None],
    block: Callable[..., SendDecision],
) -> SendDecision:
    """An opted-out number: only the one confirmation of the opt-out in force gets through."""
    out_events = sorted(consent.opt_out_event_ids, key=str)
    confirms_it = (
        facts.purpose is SendPurpose.COMPLIANCE
        and facts.in_reply_to_event_id is not None
        and consent.opt_out_event_ids == frozenset({facts.in_reply_to_event_id})
    )
    if not confirms_it:
        result: SendDecision = block(BlockReason.OPTED_OUT, *out_events)
        return result
    if facts.confirmation_already_sent:
        result = block(BlockReason.CONFIRMATION_ALREADY_SENT, *out_events)
        return result
    rules.append("opt_out_confirmation")
    rules.append("quiet_hours:exempt")
    return SendDecision(Outcome.ALLOWED, None, None, _dedupe([*out_events, *basis]), tuple(rules))


def _quiet_hours_apply(facts: SendFacts, policy: GatePolicy) -> bool:
    if facts.purpose is SendPurpose.MARKETING or facts.is_campaign:
        return True
    if facts.purpose is SendPurpose.TRANSACTIONAL:
        return policy.quiet_hours_for_transactional
    return policy.quiet_hours_for_compliance
