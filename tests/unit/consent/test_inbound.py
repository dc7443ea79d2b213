"""worker.consent.inbound.is_inert: which inbound texts the consent engine has nothing to do with.

Ingest applies inert rows in groups without calling the engine (worker/ingest/drain.py), so
a wrong True would lose a STOP: every keyword, OptOutType and odd sender must be False.
"""

from __future__ import annotations

import pytest

from worker.consent.inbound import is_inert

PHONE = "+14155550123"


@pytest.mark.parametrize("body", ["hello", "Hi, is the 14th free for a party of 12?", "", "see you at 9"])
def test_plain_texts_from_a_number_are_inert(body: str) -> None:
    assert is_inert(channel="sms", phone_e164=PHONE, body=body, opt_out_type=None)


@pytest.mark.parametrize("body", ["STOP", "stop", "Stop please", "UNSUBSCRIBE", "STOPALL", "START", "HELP", "info",
                                  "cancel"])
def test_keywords_are_not_inert(body: str) -> None:
    assert not is_inert(channel="sms", phone_e164=PHONE, body=body, opt_out_type=None)


@pytest.mark.parametrize("opt_out_type", ["STOP", "START", "HELP", "SOMETHING_NEW"])
def test_any_opt_out_type_is_not_inert(opt_out_type: str) -> None:
    """Twilio's own keyword handling, and an OptOutType we do not know (logged by the engine)."""
    assert not is_inert(channel="sms", phone_e164=PHONE, body="hello", opt_out_type=opt_out_type)


@pytest.mark.parametrize(("channel", "phone"), [("facebook", None), ("instagram", None), ("sms", None),
                                                ("sms", "ACME"), ("sms", "")])
def test_social_channels_and_non_numbers_are_not_inert(channel: str, phone: str | None) -> None:
    """The engine logs these (consent_not_applicable, consent_sender_not_a_phone_number)."""
    assert not is_inert(channel=channel, phone_e164=phone, body="hello", opt_out_type=None)
