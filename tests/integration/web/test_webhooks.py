"""The webhook receiver in-process (Starlette TestClient) against the real database and Redis."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text
from structlog.testing import capture_logs

from tests.support import processes
from tests.support.asgi import TestClient
from tests.support.broker import waiting_messages
from tests.support.env import TEST_AUTH_TOKEN, TEST_SHARED_KEYS
from tests.support.processes import wait_for
from tests.support.webhooks import (
    META_PATH,
    META_VERIFY_TOKEN,
    PUBLIC_BASE,
    SHARED_KEY_NAME,
    SMS_PATH,
    STATUS_PATH,
    meta_message_body,
    new_sid,
    rule_headers,
    signed_form,
    signed_get,
    signed_meta,
    sms_pairs,
    status_pairs,
    twilio_signature,
)
from worker import pii
from worker.db import engine
from worker.ingest.kick import KICK_KEY
from worker.settings import Settings, get_settings, set_settings
from worker.web.app import create_app
from worker.web.webhooks import EMPTY_TWIML

FROM = "+14155550123"
TO = "+12125550199"


@pytest.fixture
def client(clean_db: str, clean_redis: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def inbox_rows() -> list[dict[str, object]]:
    with engine().connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT provider, provider_event_id, delivery_id, content_type, payload_encrypted, status"
                    " FROM core.webhook_inbox ORDER BY received_at"
                )
            )
        ]


def queued_tasks(client_: redis.Redis) -> list[str]:
    return [m["headers"]["task"] for m in waiting_messages(client_)]


def test_signed_sms_is_stored_encrypted_and_answered_with_empty_twiml(
    client: TestClient, clean_redis: redis.Redis
) -> None:
    """A correctly signed SMS webhook gets empty TwiML, one encrypted inbox row, and a drain kick."""
    sid = new_sid()
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=sid, from_=FROM, to=TO, body="Hi there"))
    resp = client.post(SMS_PATH, content=body, headers=headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/xml")
    assert resp.content == EMPTY_TWIML
    rows = inbox_rows()
    assert len(rows) == 1
    row = rows[0]
    assert row["provider"] == "twilio_sms"
    assert row["provider_event_id"] == sid
    assert row["delivery_id"] == headers["I-Twilio-Idempotency-Token"]
    assert row["status"] == "pending"
    assert FROM not in str(row["payload_encrypted"])
    assert pii.decrypt(str(row["payload_encrypted"]), kind="inbox") == body.decode()
    wait_for(lambda: queued_tasks(clean_redis) == ["tasks.ingest.drain_inbox"], timeout=5, what="drain kick")
    assert clean_redis.exists(KICK_KEY)


def test_repeated_posts_store_one_row_and_publish_one_drain(client: TestClient, clean_redis: redis.Redis) -> None:
    """Twilio retrying the same MessageSid gets the same answer each time; one row, kicks coalesced."""
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
    answers = [client.post(SMS_PATH, content=body, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.content for a in answers} == {EMPTY_TWIML}
    assert len(inbox_rows()) == 1
    wait_for(lambda: queued_tasks(clean_redis) != [], timeout=5, what="drain kick")
    time.sleep(0.1)  # any further kick would have happened by now
    assert queued_tasks(clean_redis) == ["tasks.ingest.drain_inbox"]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda h: h.pop("X-Twilio-Signature"), id="missing"),
        pytest.param(lambda h: h.__setitem__("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="), id="wrong"),
        pytest.param(lambda h: h.__setitem__("X-Twilio-Signature", ""), id="empty"),
    ],
)
def test_bad_signature_is_403_and_stores_nothing(client: TestClient, clean_redis: redis.Redis, mutate: object) -> None:
    """Without Twilio's signature the receiver answers 403, stores nothing and publishes nothing."""
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
    mutate(headers)  # type: ignore[operator]
    resp = client.post(SMS_PATH, content=body, headers=headers)
    assert resp.status_code == 403
    assert inbox_rows() == []
    time.sleep(0.1)  # a kick would come from the kicker thread within a few milliseconds
    assert queued_tasks(clean_redis) == []


def test_tampered_body_is_403(client: TestClient) -> None:
    """Changing one parameter after signing invalidates the signature."""
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO, body="STOP")
    body, headers = signed_form(SMS_PATH, pairs)
    resp = client.post(SMS_PATH, content=body.replace(b"Body=STOP", b"Body=START"), headers=headers)
    assert resp.status_code == 403
    assert inbox_rows() == []


def test_signature_is_checked_against_public_url_not_the_host_the_app_sees(client: TestClient) -> None:
    """The app sees host 'testserver'; a request signed for that host fails, one signed for PUBLIC_BASE_URL passes."""
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO)
    body, headers = signed_form(SMS_PATH, pairs, base="http://testserver")
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 403
    body, headers = signed_form(SMS_PATH, pairs, base=PUBLIC_BASE)
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200


def test_query_string_is_part_of_the_signed_url(client: TestClient) -> None:
    """Twilio signs the full URL: a signature made without the query string does not validate."""
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO)
    body, headers = signed_form(SMS_PATH, pairs, query="station=ny&v=2")
    assert client.post(SMS_PATH + "?station=ny&v=2", content=body, headers=headers).status_code == 200
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
    assert client.post(SMS_PATH + "?station=ny&v=2", content=body, headers=headers).status_code == 403


def test_body_over_cap_is_413_by_content_length(client: TestClient) -> None:
    """A body larger than WEBHOOK_MAX_BODY_BYTES is refused from its Content-Length, nothing stored."""
    cap = get_settings().WEBHOOK_MAX_BODY_BYTES
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO, body="x" * (cap + 10))
    body, headers = signed_form(SMS_PATH, pairs)
    resp = client.post(SMS_PATH, content=body, headers=headers)
    assert resp.status_code == 413
    assert inbox_rows() == []


def test_chunked_body_over_cap_is_413(client: TestClient) -> None:
    """A chunked body (no Content-Length) is counted while read and refused once over the cap."""
    cap = get_settings().WEBHOOK_MAX_BODY_BYTES
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO, body="y" * (cap + 10))
    body, headers = signed_form(SMS_PATH, pairs)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    resp = client.post(SMS_PATH, content=chunks(), headers=headers)
    assert resp.status_code == 413
    assert inbox_rows() == []


def test_chunked_body_under_cap_is_accepted(client: TestClient) -> None:
    """A signed chunked body below the cap is read whole and stored."""
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO, body="chunky"))
    resp = client.post(SMS_PATH, content=iter([body[:10], body[10:]]), headers=headers)
    assert resp.status_code == 200
    assert len(inbox_rows()) == 1


def test_wrong_content_type_is_415(client: TestClient) -> None:
    """Twilio posts form encoding; a text/plain or multipart body is refused before anything else."""
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
    headers["Content-Type"] = "text/plain"
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 415
    assert inbox_rows() == []


def test_json_body_sha256_variant_is_validated_and_stored(client: TestClient) -> None:
    """Twilio's JSON variant (bodySHA256 in the URL, URL-only signature) is accepted when hash and signature match."""
    import hashlib

    sid = new_sid()
    raw = json.dumps({"MessageSid": sid, "From": FROM, "To": TO, "Body": "json"}).encode()
    digest = hashlib.sha256(raw).hexdigest()
    url = f"{PUBLIC_BASE}{SMS_PATH}?bodySHA256={digest}"
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": twilio_signature(url, [])}
    resp = client.post(f"{SMS_PATH}?bodySHA256={digest}", content=raw, headers=headers)
    assert resp.status_code == 200
    rows = inbox_rows()
    assert [(r["provider_event_id"], r["content_type"]) for r in rows] == [(sid, "application/json")]
    # The same signature with a different body fails the hash check.
    resp = client.post(f"{SMS_PATH}?bodySHA256={digest}", content=raw.replace(b"json", b"jsoN"), headers=headers)
    assert resp.status_code == 403


def test_signed_but_malformed_sms_is_stored_for_the_worker_to_fail(client: TestClient) -> None:
    """A signed body with no MessageSid is still stored (keyed by its digest): nothing signed is lost."""
    pairs = [("From", FROM), ("Body", "no sid here")]
    body, headers = signed_form(SMS_PATH, pairs)
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200
    rows = inbox_rows()
    assert len(rows) == 1
    assert str(rows[0]["provider_event_id"]).startswith("sha256:")


def test_status_callback_is_stored_by_sid_and_status(client: TestClient) -> None:
    """A signed status callback gets 200 and is stored once per (MessageSid, MessageStatus)."""
    sid = new_sid()
    for status in ("sent", "delivered", "delivered"):
        body, headers = signed_form(STATUS_PATH, status_pairs(sid=sid, status=status))
        resp = client.post(STATUS_PATH, content=body, headers=headers)
        assert resp.status_code == 200
    assert sorted(str(r["provider_event_id"]) for r in inbox_rows()) == [f"{sid}:delivered", f"{sid}:sent"]


def test_status_callback_with_bad_signature_is_403(client: TestClient) -> None:
    """Status callbacks are checked like inbound messages."""
    body, headers = signed_form(STATUS_PATH, status_pairs(sid=new_sid(), status="sent"), token="another-token")
    assert client.post(STATUS_PATH, content=body, headers=headers).status_code == 403
    assert inbox_rows() == []


def test_meta_handshake_echoes_challenge_only_for_the_right_token(client: TestClient) -> None:
    """GET /webhooks/meta answers the challenge for subscribe + our verify token, 403 otherwise."""
    ok = client.get(
        META_PATH,
        params={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200
    assert ok.text == "1158201444"
    wrong_token = client.get(
        META_PATH, params={"hub.mode": "subscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1"}
    )
    assert wrong_token.status_code == 403
    wrong_mode = client.get(
        META_PATH, params={"hub.mode": "unsubscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "1"}
    )
    assert wrong_mode.status_code == 403
    assert client.get(META_PATH).status_code == 403


def test_meta_signed_post_is_stored_and_unsigned_is_403(client: TestClient) -> None:
    """A Meta POST signed with the app secret is stored (keyed by body digest); unsigned or mis-signed is 403."""
    raw = meta_message_body(page_id="2517603138253655", sender_id="1871904392870179", mid="m_" + new_sid())
    assert client.post(META_PATH, content=raw, headers={"Content-Type": "application/json"}).status_code == 403
    bad = signed_meta(raw, secret="not-the-secret")
    assert client.post(META_PATH, content=raw, headers=bad).status_code == 403
    assert inbox_rows() == []
    resp = client.post(META_PATH, content=raw, headers=signed_meta(raw))
    assert resp.status_code == 200
    again = client.post(META_PATH, content=raw, headers=signed_meta(raw))
    assert again.status_code == 200
    rows = inbox_rows()
    assert len(rows) == 1
    assert rows[0]["provider"] == "meta"
    assert str(rows[0]["provider_event_id"]).startswith("sha256:")


def test_meta_signature_is_over_raw_bytes_not_reserialised_json(client: TestClient) -> None:
    """Whitespace and escaping are part of what Meta signed: re-serialising the JSON breaks the signature."""
    raw = b'{"object": "page",  "entry": [{"id": "1", "messaging": [], "x": "gi\\u00fap"}]}'
    headers = signed_meta(raw)
    assert client.post(META_PATH, content=raw, headers=headers).status_code == 200
    reserialised = json.dumps(json.loads(raw)).encode()
    assert reserialised != raw
    assert client.post(META_PATH, content=reserialised, headers=headers).status_code == 403


def test_stored_webhook_is_acknowledged_even_when_redis_is_down(clean_db: str) -> None:
    """With Redis unreachable the row is still stored and answered 200 quickly; the sweeper drains it later."""
    dead = f"redis://127.0.0.1:{processes.free_port()}/0"
    set_settings(Settings(REDIS_URL=dead, CELERY_BROKER_URL=dead))
    try:
        with TestClient(create_app()) as c:
            body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
            started = time.monotonic()
            resp = c.post(SMS_PATH, content=body, headers=headers)
            elapsed = time.monotonic() - started
    finally:
        set_settings(None)
    assert resp.status_code == 200
    assert elapsed < 3
    assert len(inbox_rows()) == 1


def test_receiver_answers_503_when_the_database_is_unreachable(proc_dir: Path) -> None:
    """A real receiver whose database is down answers 503 with Retry-After, never 200; /healthz stays up."""
    dead_db = f"postgresql+psycopg://postgres@127.0.0.1:{processes.free_port()}/nowhere"
    proc, base = processes.start_receiver(proc_dir, env={"DATABASE_URL": dead_db})
    try:
        body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
        resp = httpx.post(base + SMS_PATH, content=body, headers=headers, timeout=10)
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "5"
        raw = meta_message_body(page_id="1", sender_id="2", mid="m_x")
        assert httpx.post(base + META_PATH, content=raw, headers=signed_meta(raw), timeout=10).status_code == 503
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        assert httpx.get(base + "/readyz", timeout=10).status_code == 503
        # Unsigned requests are still refused first: the database is never asked about them.
        headers["X-Twilio-Signature"] = "bogus"
        assert httpx.post(base + SMS_PATH, content=body, headers=headers, timeout=10).status_code == 403
    finally:
        proc.stop()
    assert "Traceback" not in proc.log()


# Webhook Rules signatures (SharedKey, HMAC-SHA256; docs/inbound.md).


def test_rule_signed_sms_is_stored_and_answered(client: TestClient) -> None:
    """A webhook signed by a Webhooks Rule with a configured SharedKey gets empty TwiML and is stored."""
    sid = new_sid()
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=sid, from_=FROM, to=TO), rule=True)
    assert headers["X-Twilio-Webhooks-Signature-Settings"] == f"key={SHARED_KEY_NAME},algorithm=HMAC_SHA256"
    resp = client.post(SMS_PATH, content=body, headers=headers)
    assert (resp.status_code, resp.content) == (200, EMPTY_TWIML)
    [row] = inbox_rows()
    assert (row["provider"], row["provider_event_id"]) == ("twilio_sms", sid)
    assert pii.decrypt(str(row["payload_encrypted"]), kind="inbox") == body.decode()


def test_rule_signed_with_the_key_being_rotated_out_is_accepted(client: TestClient) -> None:
    """Every key in TWILIO_WEBHOOK_SHARED_KEYS is accepted under its own name (rotation without downtime)."""
    old_name, old_secret = list(TEST_SHARED_KEYS.items())[1]
    sid = new_sid()
    pairs = status_pairs(sid=sid, status="delivered")
    body, headers = signed_form(STATUS_PATH, pairs)
    headers.update(rule_headers(PUBLIC_BASE + STATUS_PATH, pairs, key=old_name, secret=old_secret))
    assert client.post(STATUS_PATH, content=body, headers=headers).status_code == 200
    assert [r["provider_event_id"] for r in inbox_rows()] == [f"{sid}:delivered"]


@pytest.mark.parametrize(
    ("change", "reason", "logged_key"),
    [
        pytest.param({"secret": "not-the-shared-secret"}, "mismatch", SHARED_KEY_NAME, id="wrong-secret"),
        pytest.param({"key": "webhooks_sharedkey_unknown"}, "unknown_key", "webhooks_sharedkey_unknown",
                     id="unknown-key-name"),
        pytest.param({"algorithm": "HMAC_SHA512"}, "unsupported_algorithm", SHARED_KEY_NAME, id="unknown-algorithm"),
        pytest.param({"algorithm": "HMAC_SHA1"}, "unsupported_algorithm", SHARED_KEY_NAME, id="sha1-shared-key"),
    ],
)
def test_rule_signature_we_cannot_verify_is_403_and_stores_nothing(
    client: TestClient, clean_redis: redis.Redis, change: dict[str, str], reason: str, logged_key: str
) -> None:
    """Wrong SharedKey secret, a key name we do not have, an algorithm we do not implement: 403, nothing stored.

    The log line names the reason and the key name the request gave, never a secret.
    """
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO)
    body, headers = signed_form(SMS_PATH, pairs)
    headers.update(rule_headers(PUBLIC_BASE + SMS_PATH, pairs, **change))
    with capture_logs() as logs:
        resp = client.post(SMS_PATH, content=body, headers=headers)
    assert resp.status_code == 403
    assert inbox_rows() == []
    [line] = [e for e in logs if e["event"] == "webhook_signature_invalid"]
    assert (line["reason"], line["key"], line["provider"]) == (reason, logged_key, "twilio_sms")
    for secret in (*TEST_SHARED_KEYS.values(), TEST_AUTH_TOKEN, "not-the-shared-secret"):
        assert secret not in repr(logs)
    time.sleep(0.1)
    assert queued_tasks(clean_redis) == []


def test_rule_signed_request_with_a_tampered_parameter_is_403(client: TestClient) -> None:
    """Changing one parameter after a Rule signed it invalidates the signature."""
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO, body="STOP"), rule=True)
    resp = client.post(SMS_PATH, content=body.replace(b"Body=STOP", b"Body=START"), headers=headers)
    assert resp.status_code == 403
    assert inbox_rows() == []
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200  # as signed


def test_settings_header_with_an_auth_token_signature_is_403(client: TestClient) -> None:
    """The settings header says a SharedKey signed it: a valid Auth Token signature does not stand in for it."""
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO)
    body, headers = signed_form(SMS_PATH, pairs)  # correct Auth Token signature
    headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={SHARED_KEY_NAME},algorithm=HMAC_SHA256"
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 403
    assert inbox_rows() == []
    del headers["X-Twilio-Webhooks-Signature-Settings"]
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200


def test_rule_signed_webhook_is_refused_when_no_shared_keys_are_configured(clean_db: str) -> None:
    """With TWILIO_WEBHOOK_SHARED_KEYS empty (the default) the feature is off: a Rule-signed webhook is 403.

    The same request is accepted by a receiver that has the key (the test environment's).
    """
    body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO), rule=True)
    set_settings(Settings(TWILIO_WEBHOOK_SHARED_KEYS=None))
    try:
        with TestClient(create_app()) as c:
            assert c.post(SMS_PATH, content=body, headers=headers).status_code == 403
            classic_body, classic = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
            assert c.post(SMS_PATH, content=classic_body, headers=classic).status_code == 200
    finally:
        set_settings(None)
    assert len(inbox_rows()) == 1
    with TestClient(create_app()) as c:
        assert c.post(SMS_PATH, content=body, headers=headers).status_code == 200
    assert len(inbox_rows()) == 2


# GET webhooks: the fields are the query string, signed as part of the URL.


def test_signed_get_sms_is_stored_like_the_same_post(client: TestClient, clean_redis: redis.Redis) -> None:
    """A GET webhook gets the same answer and stores the same form-encoded text, content type and ids as a POST."""
    sid = new_sid()
    pairs = sms_pairs(sid=sid, from_=FROM, to=TO, body="Hi there + more & more")
    target, headers = signed_get(SMS_PATH, pairs)
    resp = client.get(target, headers=headers)
    assert (resp.status_code, resp.content) == (200, EMPTY_TWIML)
    assert resp.headers["content-type"].startswith("text/xml")
    [row] = inbox_rows()
    post_body, _ = signed_form(SMS_PATH, pairs)
    assert pii.decrypt(str(row["payload_encrypted"]), kind="inbox") == post_body.decode()
    assert (row["provider"], row["provider_event_id"], row["content_type"], row["delivery_id"]) == (
        "twilio_sms", sid, "application/x-www-form-urlencoded", headers["I-Twilio-Idempotency-Token"])
    wait_for(lambda: queued_tasks(clean_redis) == ["tasks.ingest.drain_inbox"], timeout=5, what="drain kick")
    # A retry of the same GET is the same answer and no second row.
    assert client.get(target, headers=headers).content == EMPTY_TWIML
    assert len(inbox_rows()) == 1


def test_signed_get_status_callback_is_stored_by_sid_and_status(client: TestClient) -> None:
    """Status callbacks by GET answer 200 with an empty body and are keyed like POSTed ones."""
    sid = new_sid()
    for status in ("sent", "delivered"):
        target, headers = signed_get(STATUS_PATH, status_pairs(sid=sid, status=status))
        resp = client.get(target, headers=headers)
        assert (resp.status_code, resp.content) == (200, b"")
    assert sorted(str(r["provider_event_id"]) for r in inbox_rows()) == [f"{sid}:delivered", f"{sid}:sent"]


def test_rule_signed_get_is_stored(client: TestClient) -> None:
    """A GET signed by a Webhooks Rule (SharedKey over the URL with its query) is accepted."""
    sid = new_sid()
    target, headers = signed_get(SMS_PATH, sms_pairs(sid=sid, from_=FROM, to=TO), rule=True)
    assert client.get(target, headers=headers).status_code == 200
    assert [r["provider_event_id"] for r in inbox_rows()] == [sid]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t, h: (t, {k: v for k, v in h.items() if k != "X-Twilio-Signature"}), id="unsigned"),
        pytest.param(lambda t, h: (t, {**h, "X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}), id="wrong"),
        pytest.param(lambda t, h: (t.replace("Body=hello", "Body=STOP"), h), id="tampered-query"),
        pytest.param(lambda t, h: (t + "&Extra=1", h), id="added-field"),
        pytest.param(lambda t, h: (t.replace(SMS_PATH, STATUS_PATH), h), id="other-endpoint"),
    ],
)
def test_get_without_a_valid_signature_is_403_and_stores_nothing(
    client: TestClient, clean_redis: redis.Redis, mutate: object
) -> None:
    """An unsigned, mis-signed or altered GET is refused, stores nothing and kicks nothing."""
    target, headers = signed_get(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO, body="hello"))
    target, headers = mutate(target, headers)  # type: ignore[operator]
    resp = client.get(target, headers=headers)
    assert resp.status_code == 403
    assert inbox_rows() == []
    time.sleep(0.1)
    assert queued_tasks(clean_redis) == []


def test_get_signed_like_a_post_is_403(client: TestClient) -> None:
    """For GET Twilio signs the URL only: the POST-style string (URL, then the fields again) does not validate."""
    pairs = sms_pairs(sid=new_sid(), from_=FROM, to=TO)
    target, headers = signed_get(SMS_PATH, pairs)
    headers["X-Twilio-Signature"] = twilio_signature(PUBLIC_BASE + target, pairs)
    assert client.get(target, headers=headers).status_code == 403
    assert inbox_rows() == []


def test_get_query_over_cap_is_413(clean_db: str) -> None:
    """A query string longer than WEBHOOK_MAX_BODY_BYTES is refused like an oversized body, nothing stored.

    (A small cap: httpx itself refuses URLs over 64 KiB, the default cap.)
    """
    set_settings(Settings(WEBHOOK_MAX_BODY_BYTES=2048))
    try:
        with TestClient(create_app()) as c:
            fits, headers = signed_get(SMS_PATH, [("MessageSid", new_sid()), ("Body", "x" * 1900)])
            assert len(fits.split("?", 1)[1]) <= 2048
            assert c.get(fits, headers=headers).status_code == 200
            over, headers = signed_get(SMS_PATH, [("MessageSid", new_sid()), ("Body", "x" * 2100)])
            assert c.get(over, headers=headers).status_code == 413
    finally:
        set_settings(None)
    assert len(inbox_rows()) == 1


def test_head_is_not_a_webhook(client: TestClient) -> None:
    """HEAD (which Starlette allows wherever GET is) is answered 405 and never stored, even when signed."""
    target, headers = signed_get(SMS_PATH, sms_pairs(sid=new_sid(), from_=FROM, to=TO))
    resp = client.head(target, headers=headers)
    assert resp.status_code == 405
    assert inbox_rows() == []
    assert client.get(target, headers=headers).status_code == 200  # the same request as a GET
    assert len(inbox_rows()) == 1


def _from_indexes() -> dict[str, bytes | None]:
    with engine().connect() as conn:
        rows = conn.execute(text("SELECT provider_event_id, from_index FROM core.webhook_inbox"))
        return {r.provider_event_id: None if r.from_index is None else bytes(r.from_index) for r in rows}


def test_an_inbound_sms_is_stored_with_its_senders_blind_index(client: TestClient) -> None:
    """POST, GET and the JSON variant store the sender's blind index (the key the outbox and the gate use) with
    the row, so the send gate can see the text is waiting; a From that is not a number, a status callback and a
    Meta event store none. The number is never logged."""
    post_sid, get_sid, json_sid, bad_sid, status_sid = (new_sid() for _ in range(5))
    with capture_logs() as logs:
        body, headers = signed_form(SMS_PATH, sms_pairs(sid=post_sid, from_=FROM, to=TO, body="STOP"))
        assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200
        target, headers = signed_get(SMS_PATH, sms_pairs(sid=get_sid, from_=FROM, to=TO, body="STOP"))
        assert client.get(target, headers=headers).status_code == 200
        raw = json.dumps({"MessageSid": json_sid, "From": FROM, "To": TO, "Body": "STOP"}).encode()
        url = f"{SMS_PATH}?bodySHA256={hashlib.sha256(raw).hexdigest()}"
        headers = {"Content-Type": "application/json", "X-Twilio-Signature": twilio_signature(PUBLIC_BASE + url, [])}
        assert client.post(url, content=raw, headers=headers).status_code == 200
        body, headers = signed_form(SMS_PATH, sms_pairs(sid=bad_sid, from_="not-a-number", to=TO, body="STOP"))
        assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200
        body, headers = signed_form(STATUS_PATH, status_pairs(sid=status_sid, status="sent", to=FROM))
        assert client.post(STATUS_PATH, content=body, headers=headers).status_code == 200
    index = pii.blind_index(FROM, kind="phone")
    assert _from_indexes() == {post_sid: index, get_sid: index, json_sid: index, bad_sid: None,
                               f"{status_sid}:sent": None}
    assert FROM[2:] not in repr(logs)
