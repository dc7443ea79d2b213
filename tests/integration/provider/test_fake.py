"""The local fake Twilio, driven by the official twilio client through TWILIO_API_BASE_URL."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.support.env import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.support.processes import VENV_BIN, free_port, wait_for
from worker.provider.client import find_messages, make_client, request_never_reached_twilio, send_sms
from worker.provider.fake import FakeTwilio, iter_statuses
from worker.settings import Settings

TO = "+15005550100"
OTHER_TO = "+15005550101"
FROM = "+15005550006"
OTHER_FROM = "+15005550007"
PUBLIC = "https://hooks.example.test"
CALLBACK_URL = f"{PUBLIC}/webhooks/twilio/status?station=7"
MESSAGES_PATH = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"


@dataclass
class Hook:
    """A local HTTP server standing in for our receiver: records every POST it gets."""

    base_url: str
    received: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    answer: int = 200


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(base_url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            with lock:
                state.received.append((self.path, dict(self.headers.items()), form))
            self.send_response(state.answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _client_with_timeout(seconds: float) -> Any:
    return make_client(Settings(TWILIO_HTTP_TIMEOUT=seconds))


# -- create, record, fetch ---------------------------------------------------------------------


def test_official_client_message_is_recorded_by_fake(fake_twilio: FakeTwilio) -> None:
    """A message sent with the official client via TWILIO_API_BASE_URL is recorded by the fake."""
    client = make_client()

    sent = client.messages.create(to=TO, from_=FROM, body="Your booking is confirmed", validity_period=600)

    assert sent.sid.startswith("SM")
    assert len(sent.sid) == 34
    assert sent.status == "queued"
    assert sent.direction == "outbound-api"
    assert sent.date_created is not None
    [recorded] = fake_twilio.messages
    assert recorded["sid"] == sent.sid
    assert recorded["to"] == TO
    assert recorded["from"] == FROM
    assert recorded["body"] == "Your booking is confirmed"
    assert fake_twilio.sent_to(TO) == [recorded]
    assert fake_twilio.sent_to(OTHER_TO) == []
    [request] = fake_twilio.requests
    assert (request.method, request.path, request.status) == ("POST", MESSAGES_PATH, 201)
    assert request.param("To") == TO
    assert request.param("ValidityPeriod") == "600"
    assert request.headers["Authorization"].startswith("Basic ")


def test_create_answers_with_twilio_message_shape(fake_twilio: FakeTwilio) -> None:
    """The 201 body carries every field of Twilio's message JSON, with Twilio's formats."""
    response = httpx.post(
        fake_twilio.base_url + MESSAGES_PATH,
        data={"To": TO, "From": FROM, "Body": "✓" * 71},
        auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN),
    )

    assert response.status_code == 201
    msg = response.json()
    assert set(msg) >= {
        "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated", "direction",
        "error_code", "error_message", "from", "messaging_service_sid", "num_media", "num_segments",
        "price", "price_unit", "sid", "status", "subresource_uris", "to", "uri",
    }  # fmt: skip
    assert msg["account_sid"] == TEST_ACCOUNT_SID
    assert msg["api_version"] == "2010-04-01"
    assert msg["date_created"].endswith(" +0000")
    assert msg["date_created"][3:5] == ", "
    assert msg["error_code"] is None
    assert msg["price"] is None
    assert msg["num_media"] == "0"
    assert msg["num_segments"] == "2"  # 71 UCS-2 characters: over the 70-character single segment
    assert msg["uri"] == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages/{msg['sid']}.json"


def test_messaging_service_create_is_accepted(fake_twilio: FakeTwilio) -> None:
    """A create through a Messaging Service answers status 'accepted', like Twilio."""
    sent = send_sms(make_client(), to=TO, body="hi", messaging_service_sid="MG" + "a" * 32)

    assert sent.status == "accepted"
    assert sent.messaging_service_sid == "MG" + "a" * 32
    assert fake_twilio.message(sent.sid)["status"] == "accepted"


def test_fetch_one_message_and_unknown_sid(fake_twilio: FakeTwilio) -> None:
    """GET of a created message returns it; an unknown SID is 404 with code 20404."""
    client = make_client()
    sent = send_sms(client, to=TO, body="hello", from_=FROM)

    fetched = client.messages(sent.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.to) == (sent.sid, "hello", TO)

    with pytest.raises(TwilioRestException) as info:
        client.messages("SM" + "0" * 32).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("form", "code"),
    [({"From": FROM, "Body": "hi"}, 21604), ({"To": TO, "From": FROM}, 21602), ({"To": TO, "Body": "hi"}, 21603)],
)
def test_create_missing_fields_is_twilio_400(fake_twilio: FakeTwilio, form: dict[str, str], code: int) -> None:
    """Missing To / Body / From answers 400 with Twilio's error JSON and creates nothing."""
    response = httpx.post(fake_twilio.base_url + MESSAGES_PATH, data=form, auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN))

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]
    assert fake_twilio.messages == []


def test_wrong_auth_is_401_and_foreign_account_is_404(fake_twilio: FakeTwilio) -> None:
    """Bad credentials answer 401/20003; a path naming another account answers 404."""
    bad = make_client(Settings(TWILIO_AUTH_TOKEN="not-the-token"))
    with pytest.raises(TwilioRestException) as info:
        send_sms(bad, to=TO, body="hi", from_=FROM)
    assert (info.value.status, info.value.code) == (401, 20003)

    other_account = "AC" + "2" * 32
    response = httpx.post(
        f"{fake_twilio.base_url}/2010-04-01/Accounts/{other_account}/Messages.json",
        data={"To": TO, "From": FROM, "Body": "hi"},
        auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN),
    )
    assert response.status_code == 404
    assert fake_twilio.messages == []
    assert [r.status for r in fake_twilio.requests] == [401, 404]


# -- fault injection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"error_code": 21610}, 400, 21610),
        ({"error_code": 21211}, 400, 21211),
        ({"error_code": 21614}, 400, 21614),
        ({"http_status": 429}, 429, 20429),
        ({"http_status": 500}, 500, 20500),
    ],
)
def test_injected_error_surfaces_in_client(
    fake_twilio: FakeTwilio, kwargs: dict[str, int], status: int, code: int
) -> None:
    """A failed number raises TwilioRestException with the injected code and HTTP status; nothing is created."""
    fake_twilio.fail_number(TO, **kwargs)

    with pytest.raises(TwilioRestException) as info:
        send_sms(make_client(), to=TO, body="hi", from_=FROM)

    assert (info.value.status, info.value.code) == (status, code)
    assert fake_twilio.messages == []
    # Other numbers are unaffected.
    assert send_sms(make_client(), to=OTHER_TO, body="hi", from_=FROM).status == "queued"


def test_21610_message_text(fake_twilio: FakeTwilio) -> None:
    """21610 carries Twilio's 'unsubscribed recipient' text, which operators will see in logs."""
    fake_twilio.fail_number(TO, error_code=21610)

    with pytest.raises(TwilioRestException) as info:
        send_sms(make_client(), to=TO, body="hi", from_=FROM)

    assert "Attempt to send to unsubscribed recipient" in info.value.msg


def test_fail_times_then_succeed_and_fail_next(fake_twilio: FakeTwilio) -> None:
    """times=1 fails once then sends; fail_next(2) fails the next two creates whatever the number."""
    client = make_client()
    fake_twilio.fail_number(TO, http_status=500, times=1)
    with pytest.raises(TwilioRestException):
        send_sms(client, to=TO, body="1", from_=FROM)
    assert send_sms(client, to=TO, body="2", from_=FROM).status == "queued"

    fake_twilio.fail_next(2, http_status=429)
    for to in (TO, OTHER_TO):
        with pytest.raises(TwilioRestException) as info:
            send_sms(client, to=to, body="x", from_=FROM)
        assert info.value.code == 20429
    assert send_sms(client, to=OTHER_TO, body="3", from_=FROM).status == "queued"
    assert [m["body"] for m in fake_twilio.messages] == ["2", "3"]


def test_fail_number_rejects_meaningless_rules(fake_twilio: FakeTwilio) -> None:
    """A rule that says nothing about how to fail, or mixes sync and delivery errors, is refused."""
    with pytest.raises(ValueError, match="say how to fail"):
        fake_twilio.fail_number(TO)
    with pytest.raises(ValueError, match="say how to fail"):
        fake_twilio.fail_number(TO, after_accept=True)  # accepted and answered normally is no failure
    with pytest.raises(ValueError, match="delivery_error"):
        fake_twilio.fail_number(TO, error_code=21610, delivery_error=30006)
    with pytest.raises(ValueError, match="times"):
        fake_twilio.fail_number(TO, error_code=21610, times=0)


def test_hang_fires_client_timeout_and_creates_nothing(fake_twilio: FakeTwilio) -> None:
    """A hang makes the client's read timeout fire within the timeout; the message was not created."""
    fake_twilio.fail_number(TO, hang_seconds=5, times=1)
    client = _client_with_timeout(0.5)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout) as info:
        send_sms(client, to=TO, body="hi", from_=FROM)
    elapsed = time.monotonic() - started

    assert 0.4 < elapsed < 2.0
    assert not request_never_reached_twilio(info.value)  # a read timeout proves nothing
    assert fake_twilio.messages == []
    assert [r.param("To") for r in fake_twilio.requests] == [TO]


def test_accepted_then_hung_message_exists_and_is_found(fake_twilio: FakeTwilio) -> None:
    """after_accept: the client times out, yet the message exists at the fake and find_messages finds it."""
    client = _client_with_timeout(0.5)
    send_sms(client, to=TO, body="older, other number", from_=FROM)
    fake_twilio.fail_number(TO, hang_seconds=5, after_accept=True, times=1)
    attempt_started = datetime.now(UTC)

    with pytest.raises(requests.exceptions.ReadTimeout):
        send_sms(client, to=TO, body="Your code is 1234", from_=FROM)

    [older, created] = fake_twilio.sent_to(TO)
    assert created["body"] == "Your code is 1234"
    found = find_messages(client, to=TO, from_=FROM, date_sent_after=attempt_started)
    assert created["sid"] in [f.sid for f in found]
    match = next(f for f in found if f.sid == created["sid"])
    assert (match.body, match.to, match.from_, match.status) == ("Your code is 1234", TO, FROM, "queued")
    # The bound is honoured: a message created well before the attempt is left out.
    earlier = find_messages(client, to=TO, date_sent_after=attempt_started + timedelta(hours=1))
    assert earlier == []
    assert older["sid"] in [f.sid for f in find_messages(client, to=TO)]


def test_accepted_then_500_message_exists(fake_twilio: FakeTwilio) -> None:
    """after_accept with HTTP 500: the caller sees a Twilio 500, yet the message was created and is findable."""
    client = make_client()
    fake_twilio.fail_number(TO, after_accept=True, http_status=500, times=1)

    with pytest.raises(TwilioRestException) as info:
        send_sms(client, to=TO, body="ambiguous", from_=FROM)

    assert (info.value.status, info.value.code) == (500, 20500)
    [created] = fake_twilio.sent_to(TO)
    assert [f.sid for f in find_messages(client, to=TO)] == [created["sid"]]


def test_stop_releases_hung_handlers() -> None:
    """stop() returns promptly even while a request is hanging for a long time."""
    fake = FakeTwilio(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN).start()
    fake.fail_next(1, hang_seconds=60)
    worker = threading.Thread(
        target=lambda: httpx.post(
            fake.base_url + MESSAGES_PATH,
            data={"To": TO, "From": FROM, "Body": "x"},
            auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN),
            timeout=30,
        ),
        daemon=True,
    )
    worker.start()
    wait_for(lambda: len(fake.requests) == 1, timeout=5, what="hung request to arrive")

    started = time.monotonic()
    fake.stop()
    worker.join(timeout=5)

    assert time.monotonic() - started < 3
    assert not worker.is_alive()


# -- list and filters ----------------------------------------------------------------------------


def test_list_filters_by_to_from_and_date_sent(fake_twilio: FakeTwilio) -> None:
    """The official client's list() filters by To, From, DateSent, DateSent< and DateSent>, newest first."""
    client = make_client()
    days = iter([datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)] * 3)
    fake_twilio.clock = lambda: next(days)
    a1 = send_sms(client, to=TO, body="a1", from_=FROM)  # Mar 1
    a2 = send_sms(client, to=TO, body="a2", from_=OTHER_FROM)  # Mar 2
    b1 = send_sms(client, to=OTHER_TO, body="b1", from_=FROM)  # Mar 1
    a3 = send_sms(client, to=TO, body="a3", from_=FROM)  # Mar 2

    def sids(**kwargs: object) -> list[str]:
        return [m.sid for m in client.messages.list(**kwargs)]

    assert sids() == [a3.sid, a2.sid, b1.sid, a1.sid]
    assert sids(to=TO) == [a3.sid, a2.sid, a1.sid]
    assert sids(to=TO, from_=FROM) == [a3.sid, a1.sid]
    assert sids(from_=FROM) == [a3.sid, b1.sid, a1.sid]
    assert sids(date_sent=date(2026, 3, 1)) == [b1.sid, a1.sid]
    assert sids(to=TO, date_sent_after=datetime(2026, 3, 2, 12, tzinfo=UTC)) == [a3.sid, a2.sid]
    assert sids(to=TO, date_sent_before=datetime(2026, 3, 1, 12, tzinfo=UTC)) == [a1.sid]
    assert sids(to=TO, date_sent_after=datetime(2026, 3, 2, 12, 0, 1, tzinfo=UTC)) == []
    last = fake_twilio.requests[-1]
    assert last.query["DateSent>"] == ["2026-03-02T12:00:01Z"]  # what twilio-python 9 sends


def test_list_pages_through_next_page_uri(fake_twilio: FakeTwilio) -> None:
    """With a small page size, the official client follows next_page_uri through the base URL rewrite."""
    client = make_client()
    created = [send_sms(client, to=TO, body=str(i), from_=FROM).sid for i in range(7)]

    listed = [m.sid for m in client.messages.stream(to=TO, page_size=3)]

    assert listed == list(reversed(created))
    pages = [r for r in fake_twilio.requests if r.method == "GET"]
    assert len(pages) == 3
    assert pages[1].query["Page"] == ["1"]
    assert pages[1].query["PageSize"] == ["3"]


# -- status callbacks ----------------------------------------------------------------------------


def test_auto_callbacks_are_signed_for_the_public_url(fake_twilio: FakeTwilio, hook: Hook) -> None:
    """Callbacks go to the routed local URL but validate with RequestValidator against the original public URL."""
    fake_twilio.auto_callbacks = ("sent", "delivered")
    fake_twilio.route_callbacks(PUBLIC, hook.base_url)

    sent = send_sms(make_client(), to=TO, body="hi", from_=FROM, status_callback=CALLBACK_URL)
    fake_twilio.wait_for_callbacks(2)

    assert [form["MessageStatus"] for _, _, form in hook.received] == ["sent", "delivered"]
    validator = RequestValidator(TEST_AUTH_TOKEN)
    for path, headers, form in hook.received:
        assert path == "/webhooks/twilio/status?station=7"
        assert validator.validate(CALLBACK_URL, form, headers["X-Twilio-Signature"])
        assert not validator.validate(hook.base_url + path, form, headers["X-Twilio-Signature"])
        assert headers["I-Twilio-Idempotency-Token"]
        assert form["MessageSid"] == form["SmsSid"] == sent.sid
        assert form["AccountSid"] == TEST_ACCOUNT_SID
        assert (form["To"], form["From"], form["ApiVersion"]) == (TO, FROM, "2010-04-01")
        assert "ErrorCode" not in form
    assert "RawDlrDoneDate" in hook.received[1][2]
    assert len({h["I-Twilio-Idempotency-Token"] for _, h, _ in hook.received}) == 2
    assert [c.status_code for c in fake_twilio.callbacks] == [200, 200]
    assert fake_twilio.callbacks[0].url == CALLBACK_URL
    assert fake_twilio.message(sent.sid)["status"] == "delivered"


def test_delivery_error_arrives_as_undelivered_with_error_code(fake_twilio: FakeTwilio, hook: Hook) -> None:
    """A 30006 delivery error is accepted with 201, then reported as undelivered with ErrorCode=30006."""
    fake_twilio.auto_callbacks = ("sent", "delivered")
    fake_twilio.route_callbacks(PUBLIC, hook.base_url)
    fake_twilio.fail_number(TO, delivery_error=30006)

    sent = send_sms(make_client(), to=TO, body="hi", from_=FROM, status_callback=CALLBACK_URL)
    callbacks = fake_twilio.wait_for_callbacks(2)

    assert sent.status == "queued"
    assert list(iter_statuses(callbacks, sent.sid)) == ["sent", "undelivered"]
    final = hook.received[-1][2]
    assert (final["MessageStatus"], final["ErrorCode"]) == ("undelivered", "30006")
    assert RequestValidator(TEST_AUTH_TOKEN).validate(CALLBACK_URL, final, hook.received[-1][1]["X-Twilio-Signature"])
    fetched = make_client().messages(sent.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30006)


def test_delivery_error_without_auto_callbacks_still_reports_undelivered(fake_twilio: FakeTwilio, hook: Hook) -> None:
    """With no auto callbacks configured, a delivery error still posts the one undelivered callback."""
    fake_twilio.route_callbacks(PUBLIC, hook.base_url)
    fake_twilio.fail_number(TO, delivery_error=30003, times=1)

    send_sms(make_client(), to=TO, body="hi", from_=FROM, status_callback=CALLBACK_URL)
    [callback] = fake_twilio.wait_for_callbacks(1)

    assert (callback.params["MessageStatus"], callback.params["ErrorCode"]) == ("undelivered", "30003")


def test_post_status_on_demand_records_receiver_answer(fake_twilio: FakeTwilio, hook: Hook) -> None:
    """post_status posts one signed callback now and records the receiver's HTTP status."""
    fake_twilio.route_callbacks(PUBLIC, hook.base_url)
    sent = send_sms(make_client(), to=TO, body="hi", from_=FROM, status_callback=CALLBACK_URL)
    hook.answer = 400

    record = fake_twilio.post_status(sent.sid, "failed", error_code=30007)

    assert record.status_code == 400
    assert record.error is None
    assert record.delivered_to == hook.base_url + "/webhooks/twilio/status?station=7"
    assert record.params["ErrorCode"] == "30007"
    assert fake_twilio.message(sent.sid)["error_code"] == 30007
    assert hook.received[0][2]["MessageStatus"] == "failed"


def test_callback_to_unreachable_receiver_is_recorded(fake_twilio: FakeTwilio) -> None:
    """A callback that cannot be delivered is recorded with its error instead of vanishing."""
    fake_twilio.route_callbacks(PUBLIC, f"http://127.0.0.1:{free_port()}")
    sent = send_sms(make_client(), to=TO, body="hi", from_=FROM, status_callback=CALLBACK_URL)

    record = fake_twilio.post_status(sent.sid, "sent")

    assert record.status_code is None
    assert record.error is not None
    assert "ConnectError" in record.error


# -- concurrency, admin API, CLI -----------------------------------------------------------------


def test_concurrent_creates_are_all_recorded(fake_twilio: FakeTwilio) -> None:
    """Many threads sending at once through one client: every message recorded once, SIDs unique."""
    client = make_client()
    numbers = [f"+1500555{i:04d}" for i in range(200)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        sids = list(pool.map(lambda n: send_sms(client, to=n, body="x", from_=FROM).sid, numbers))

    assert len(set(sids)) == 200
    assert sorted(m["to"] for m in fake_twilio.messages) == sorted(numbers)


def test_admin_endpoints_control_the_fake(fake_twilio: FakeTwilio) -> None:
    """/_fake/ JSON endpoints list messages, inject failures and reset, for the demo's separate process."""
    base = fake_twilio.base_url
    client = make_client()
    send_sms(client, to=TO, body="hi", from_=FROM)

    assert [m["to"] for m in httpx.get(f"{base}/_fake/messages").json()["messages"]] == [TO]
    assert httpx.get(f"{base}/_fake/messages", params={"to": OTHER_TO}).json()["messages"] == []
    assert httpx.post(f"{base}/_fake/fail_number", json={"to": OTHER_TO, "error_code": 21610}).json() == {"ok": True}
    with pytest.raises(TwilioRestException) as info:
        send_sms(client, to=OTHER_TO, body="hi", from_=FROM)
    assert info.value.code == 21610
    assert httpx.post(f"{base}/_fake/fail_number", json={"to": TO}).status_code == 400
    assert httpx.post(f"{base}/_fake/reset").json() == {"ok": True}
    assert httpx.get(f"{base}/_fake/messages").json()["messages"] == []
    assert send_sms(client, to=OTHER_TO, body="hi", from_=FROM).status == "queued"


def test_cli_serves_fake_in_foreground() -> None:
    """`msgworker fake-twilio` serves the API in its own process; the official client's send shows in /_fake/."""
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "msgworker"), "fake-twilio", "--port", str(port), "--callbacks", ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                return httpx.get(f"{base}/_fake/messages", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=20, what="msgworker fake-twilio")
        client = make_client(Settings(TWILIO_API_BASE_URL=base))
        sent = send_sms(client, to=TO, body="hi", from_=FROM)

        [listed] = httpx.get(f"{base}/_fake/messages").json()["messages"]
        assert listed["sid"] == sent.sid
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_fixture_exports_base_url_to_child_processes(fake_twilio: FakeTwilio) -> None:
    """Processes started during the test (worker, receiver) read the fake's URL as TWILIO_API_BASE_URL."""
    out = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            "from worker.settings import get_settings as g; print(g().TWILIO_API_BASE_URL)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    assert out.stdout.strip() == fake_twilio.base_url


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("a" * 152 + "€" + "a" * 152, "3"),  # the escape pair is not split: it opens segment 2
        ("😀" * 36, "2"),  # 72 UTF-16 units: an emoji is a surrogate pair
    ],
)
def test_num_segments_follow_gsm7_limits(fake_twilio: FakeTwilio, body: str, segments: str) -> None:
    """Bodies split at 160 septets (70 UCS-2 units), then 153 (67) per segment, as carriers count them."""
    sent = make_client().messages.create(to=TO, from_=FROM, body=body)

    assert sent.num_segments == segments


def test_invalid_date_filter_is_400(fake_twilio: FakeTwilio) -> None:
    """A DateSent value that is not a date answers 400 instead of an empty list."""
    response = httpx.get(
        fake_twilio.base_url + MESSAGES_PATH,
        params={"DateSent>": "yesterday"},
        auth=(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN),
    )

    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_fake_bug_answers_twilio_500(fake_twilio: FakeTwilio) -> None:
    """An exception inside the fake answers 500/20500 (what a Twilio outage looks like), not a dropped connection."""

    def broken_clock() -> datetime:
        raise RuntimeError("clock broke")

    fake_twilio.clock = broken_clock

    with pytest.raises(TwilioRestException) as info:
        send_sms(make_client(), to=TO, body="hi", from_=FROM)

    assert (info.value.status, info.value.code) == (500, 20500)
