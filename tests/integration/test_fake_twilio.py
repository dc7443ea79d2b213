"""The local fake Twilio, driven by the official twilio client through TWILIO_API_BASE_URL."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.support.env import TEST_ACCOUNT_SID
from worker.fake_twilio import FakeTwilio
from worker.twilio_client import make_client, send_sms

TO = "+15005550100"
FROM = "+15005550006"


def test_official_client_message_is_recorded_by_fake(fake_twilio: FakeTwilio) -> None:
    """A message sent with the official client via TWILIO_API_BASE_URL is recorded by the fake."""
    client = make_client()

    sent = client.messages.create(to=TO, from_=FROM, body="Your booking is confirmed")

    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert sent.status == "queued"
    [recorded] = fake_twilio.messages
    assert recorded["sid"] == sent.sid
    assert recorded["to"] == TO and recorded["from"] == FROM and recorded["body"] == "Your booking is confirmed"
    [request] = fake_twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"
    assert request.param("To") == TO


@pytest.mark.parametrize(("code", "status"), [(21610, 400), (21211, 400), (21614, 400)])
def test_injected_sync_error_surfaces_in_client(fake_twilio: FakeTwilio, code: int, status: int) -> None:
    """A number failed with a Twilio code raises TwilioRestException carrying that code and status."""
    fake_twilio.fail_number(TO, error_code=code)

    with pytest.raises(TwilioRestException) as info:
        send_sms(make_client(), to=TO, body="hi", from_=FROM)

    assert (info.value.code, info.value.status) == (code, status)
    assert fake_twilio.messages == []
