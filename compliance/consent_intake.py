"""What an inbound SMS means for consent: our classifier's verdict and Twilio's, merged.

Twilio's Advanced Opt-Out adds ``OptOutType`` (STOP, START or HELP) to the inbound
webhook when it recognised a keyword and already replied
(docs/compliance.md#advanced-opt-out-and-optouttype). Our own classifier (compliance.keywords) is
wider, because the FCC's rule is (docs/compliance.md#revocation-by-any-reasonable-means).
The two are merged most-restrictive-first: an opt-out from either side wins, then an
opt-in, then HELP, then "a person should look" (review), else nothing.

Only an explicit opt-in (our OPT_IN intent or Twilio's START) can become an opt-in:
no other message ever lifts an opt-out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from compliance.consent_rules import Source
from compliance.keywords import Classification, Intent

__all__ = ["Action", "InboundDecision", "decide"]

# Rules of compliance.keywords that are whole-message keyword matches; any other
# matching rule is a phrase (free text read as a revocation).
KEYWORD_RULES = frozenset({"exact_keyword"})

_TWILIO = {"STOP": Intent.OPT_OUT, "START": Intent.OPT_IN, "HELP": Intent.HELP}


class Action(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    REVIEW = "review"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class InboundDecision:
    action: Action
    source: Source | None
    # STOPALL (or its equivalents): always business-wide, every purpose.
    scope_all: bool
    # Twilio's Advanced Opt-Out recognised this very intent and has already replied.
    provider_replied: bool
    # An OptOutType value we do not know (kept as evidence, otherwise ignored).
    unknown_opt_out_type: str | None = None


def decide(classification: Classification, opt_out_type: str | None) -> InboundDecision:
    raw = (opt_out_type or "").strip().upper()
    twilio = _TWILIO.get(raw)
    ours = classification.intent
    unknown = raw if raw and twilio is None else None
    for intent, action in (
        (Intent.OPT_OUT, Action.OPT_OUT),
        (Intent.OPT_IN, Action.OPT_IN),
        (Intent.HELP, Action.HELP),
    ):
        if twilio == intent or ours == intent:
            if twilio == intent:
                source = Source.TWILIO_OPT_OUT_TYPE
            elif classification.rule in KEYWORD_RULES:
                source = Source.SMS_KEYWORD
            else:
                source = Source.SMS_PHRASE
            return InboundDecision(
                action=action,
                source=source,
                scope_all=intent == Intent.OPT_OUT and ours == Intent.OPT_OUT and classification.scope_all,
                provider_replied=twilio == intent,
                unknown_opt_out_type=unknown,
            )
    if ours == Intent.REVIEW:
        source = Source.SMS_KEYWORD if classification.rule in KEYWORD_RULES else Source.SMS_PHRASE
        return InboundDecision(Action.REVIEW, source, False, False, unknown)
    return InboundDecision(Action.NONE, None, False, False, unknown)
