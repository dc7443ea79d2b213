"""worker.provider.client: base-URL rewriting, one client per process, no retries, error classification."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import urllib3.exceptions

from tests.support.processes import free_port
from worker.provider import client as twilio_client
from worker.provider.client import (
    TWILIO_API_URL,
    BaseUrlHttpClient,
    make_client,
    request_never_reached_twilio,
    reset_client,
    send_sms,
)
from worker.settings import Settings

FAKE = "http://127.0.0.1:8099"


@pytest.fixture(autouse=True)
def _fresh_client() -> Iterator[None]:
    reset_client()
    yield
    reset_client()


def test_rewrites_only_the_twilio_api_prefix() -> None:
    """api.twilio.com URLs go to the configured base URL; other hosts and the default base are untouched."""
    fake = BaseUrlHttpClient(FAKE + "/", timeout=1)
    real = BaseUrlHttpClient(TWILIO_API_URL, timeout=1)
    path = "/2010-04-01/Accounts/AC1/Messages.json?To=%2B1"

    assert fake.rewrite(TWILIO_API_URL + path) == FAKE + path
    assert fake.rewrite("https://messaging.twilio.com/v1/Services") == "https://messaging.twilio.com/v1/Services"
    assert fake.rewrite("https://api.twilio.com.evil.test/x") == "https://api.twilio.com.evil.test/x"
    assert real.rewrite(TWILIO_API_URL + path) == TWILIO_API_URL + path


def test_http_client_never_retries_and_uses_configured_timeout() -> None:
    """Both http and https adapters have zero retries (a duplicate SMS is a harm); the timeout is the setting's."""
    client = make_client(Settings(TWILIO_API_BASE_URL=FAKE, TWILIO_HTTP_TIMEOUT=3.5))
    http_client = client.http_client

    assert isinstance(http_client, BaseUrlHttpClient)
    assert http_client.timeout == 3.5
    for scheme in ("http://", "https://"):
        retries = http_client.session.get_adapter(scheme + "example.test").max_retries
        assert retries.total == 0
        assert retries.read is False


def test_one_client_per_settings_object() -> None:
    """The same settings give the same client (pooled connections); new settings or reset_client give a new one."""
    settings = Settings(TWILIO_API_BASE_URL=FAKE)

    first = make_client(settings)
    assert make_client(settings) is first
    second = make_client(Settings(TWILIO_API_BASE_URL=FAKE))
    assert second is not first
    reset_client()
    assert make_client(settings) is not second


def test_default_settings_client_follows_get_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """make_client() without arguments uses get_settings(), so an installed override decides the base URL."""
    settings = Settings(TWILIO_API_BASE_URL=FAKE)
    monkeypatch.setattr(twilio_client, "get_settings", lambda: settings)

    assert make_client().http_client.base_url == FAKE
    assert make_client() is make_client(settings)


def test_edge_and_region_cleared_for_custom_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """TWILIO_EDGE/REGION in the environment would rewrite the host; they are dropped when the base URL is custom."""
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")

    custom = make_client(Settings(TWILIO_API_BASE_URL=FAKE))
    real = make_client(Settings())

    assert (custom.edge, custom.region) == (None, None)
    assert (real.edge, real.region) == ("dublin", "ie1")
    assert custom.get_hostname(TWILIO_API_URL + "/x") == TWILIO_API_URL + "/x"


def test_credentials_come_from_settings() -> None:
    """The client authenticates with the settings' account SID and auth token."""
    client = make_client(Settings(TWILIO_ACCOUNT_SID="AC" + "9" * 32, TWILIO_AUTH_TOKEN="tok"))

    assert (client.username, client.password) == ("AC" + "9" * 32, "tok")
    assert client.account_sid == "AC" + "9" * 32


def test_refused_connection_never_reached_twilio() -> None:
    """A refused connection raises requests' ConnectionError at once and is classified as never sent."""
    client = make_client(Settings(TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}", TWILIO_HTTP_TIMEOUT=2))

    with pytest.raises(requests.exceptions.ConnectionError) as info:
        send_sms(client, to="+15005550100", body="hi", from_="+15005550006")

    assert request_never_reached_twilio(info.value)


@pytest.mark.parametrize(
    ("exc", "never_reached"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), True),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.MaxRetryError(
                    None,  # type: ignore[arg-type]
                    "/",
                    urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
                )
            ),
            True,
        ),
        (requests.exceptions.ReadTimeout("read timed out"), False),
        (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.")), False),
        (requests.exceptions.ConnectionError("reset"), False),
        (requests.exceptions.ChunkedEncodingError("broken"), False),
        (ValueError("not a transport error"), False),
    ],
)
def test_request_never_reached_twilio_is_strict(exc: BaseException, never_reached: bool) -> None:
    """Only connect failures count as 'not sent'; timeouts while reading and resets may have sent the SMS."""
    assert request_never_reached_twilio(exc) is never_reached


def test_send_sms_needs_a_sender() -> None:
    """Without From or a Messaging Service SID the call is refused before any HTTP request."""
    client = make_client(Settings(TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}"))

    with pytest.raises(ValueError, match="from_ or messaging_service_sid"):
        send_sms(client, to="+15005550100", body="hi")
