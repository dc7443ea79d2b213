"""compliance.consent_intake: our classifier's verdict and Twilio's OptOutType, merged."""

from __future__ import annotations

import pytest

from compliance.consent_intake import Action, decide
from compliance.consent_replies import help_reply, opt_in_confirmation, opt_out_confirmation
from compliance.consent_rules import Source
from compliance.keywords import Classification, Intent


def cls(intent: Intent, rule: str = "exact_keyword", scope_all: bool = False) -> Classification:
    return Classification(intent, "x", "en", rule, scope_all=scope_all)


@pytest.mark.parametrize(
    ("ours", "twilio", "action", "source", "replied", "scope_all"),
    [
        (cls(Intent.OPT_OUT), None, Action.OPT_OUT, Source.SMS_KEYWORD, False, False),
        (cls(Intent.OPT_OUT, rule="phrase"), None, Action.OPT_OUT, Source.SMS_PHRASE, False, False),
        (cls(Intent.OPT_OUT, scope_all=True), None, Action.OPT_OUT, Source.SMS_KEYWORD, False, True),
        (cls(Intent.OPT_OUT), "STOP", Action.OPT_OUT, Source.TWILIO_OPT_OUT_TYPE, True, False),
        # Twilio's custom keyword we do not know: Twilio's verdict alone counts.
        (cls(Intent.NONE, rule="no_match"), "STOP", Action.OPT_OUT, Source.TWILIO_OPT_OUT_TYPE, True, False),
        (cls(Intent.OPT_IN), None, Action.OPT_IN, Source.SMS_KEYWORD, False, False),
        (cls(Intent.NONE, rule="no_match"), "start", Action.OPT_IN, Source.TWILIO_OPT_OUT_TYPE, True, False),
        # Our opt-out beats Twilio's START (most restrictive first); Twilio did not reply to an opt-out.
        (cls(Intent.OPT_OUT, rule="phrase"), "START", Action.OPT_OUT, Source.SMS_PHRASE, False, False),
        (cls(Intent.HELP), "HELP", Action.HELP, Source.TWILIO_OPT_OUT_TYPE, True, False),
        (cls(Intent.HELP), None, Action.HELP, Source.SMS_KEYWORD, False, False),
        (cls(Intent.REVIEW, rule="ambiguous"), None, Action.REVIEW, Source.SMS_PHRASE, False, False),
        (cls(Intent.NONE, rule="no_match"), None, Action.NONE, None, False, False),
    ],
)
def test_decide(
    ours: Classification, twilio: str | None, action: Action, source: Source | None, replied: bool, scope_all: bool
) -> None:
    """Opt-out from either side wins, then opt-in, then HELP; the source says who recognised it."""
    d = decide(ours, twilio)
    assert (d.action, d.source, d.provider_replied, d.scope_all) == (action, source, replied, scope_all)


def test_unknown_opt_out_type_is_reported_not_acted_on() -> None:
    """An OptOutType value Twilio may add later is kept for the log, and nothing is inferred from it."""
    d = decide(cls(Intent.NONE, rule="no_match"), "PAUSE")
    assert d.action == Action.NONE
    assert d.unknown_opt_out_type == "PAUSE"


def test_reply_texts_follow_ctia_and_fcc() -> None:
    """Confirmations carry the brand and opt-back-in/STOP instructions, fit one GSM-7 segment, no marketing."""
    out = opt_out_confirmation("Hibachi Home")
    assert out.startswith("Hibachi Home:")
    assert "START" in out
    assert len(out) <= 160
    assert out.isascii()
    for word in ("%", "off", "deal", "offer", "discount", "sale"):
        assert word not in out.lower().split()
    marketing = opt_out_confirmation("Hibachi Home", marketing_only=True)
    assert "marketing" in marketing
    assert "START" in marketing
    start = opt_in_confirmation("Hibachi Home")
    assert "Msg & data rates may apply" in start
    assert "STOP" in start
    assert len(start) <= 160
    helped = help_reply("Hibachi Home", "support@example.test")
    for part in ("Hibachi Home", "support@example.test", "Msg frequency varies", "Msg & data rates may apply", "STOP"):
        assert part in helped
    assert len(helped) <= 160
    assert help_reply("B", None, "  Custom help. Reply STOP to opt out.  ") == "Custom help. Reply STOP to opt out."
