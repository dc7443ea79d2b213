"""Build and sign provider webhooks the way Twilio and Meta do, for tests and benchmarks.

Signing uses twilio-python's own ``RequestValidator.compute_signature`` (the reference) with
a MultiDict-shaped argument, never our validation code, so a test that posts a signed
webhook checks our side against Twilio's algorithm rather than against itself. Webhook Rules
signing is the same call with the SharedKey's secret and ``HMAC_SHA256``, plus the
``X-Twilio-Webhooks-Signature-Settings`` header naming the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from tests.support.env import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_SHARED_KEYS

PUBLIC_BASE = "https://hooks.example.test"
META_SECRET = "test-meta-app-secret"
META_VERIFY_TOKEN = "test-meta-verify-token"
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
META_PATH = "/webhooks/meta"

Pairs = Sequence[tuple[str, str]]
SHARED_KEY_NAME = next(iter(TEST_SHARED_KEYS))
SHARED_KEY_SECRET = TEST_SHARED_KEYS[SHARED_KEY_NAME]


class _MultiDict(dict[str, list[str]]):
    """The Flask/Werkzeug MultiDict shape that RequestValidator.get_values understands."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def _multi(pairs: Iterable[tuple[str, str]]) -> _MultiDict:
    out = _MultiDict()
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def twilio_signature(
    url: str, pairs: Iterable[tuple[str, str]], token: str = TEST_AUTH_TOKEN, algorithm: str = "HMAC_SHA1"
) -> str:
    return str(RequestValidator(token).compute_signature(url, _multi(pairs), algorithm))


def rule_headers(
    url: str,
    pairs: Iterable[tuple[str, str]],
    *,
    key: str = SHARED_KEY_NAME,
    secret: str = SHARED_KEY_SECRET,
    algorithm: str = "HMAC_SHA256",
) -> dict[str, str]:
    """The two headers Twilio sends when a Webhooks Rule signs with a SharedKey.

    An algorithm twilio-python does not know (``HMAC_SHA512``) is computed over the same
    string by hand, so a test can show that even a correct signature with it is refused.
    """
    if algorithm in ("HMAC_SHA1", "HMAC_SHA256"):
        signature = twilio_signature(url, pairs, secret, algorithm)
    else:
        multi = _multi(pairs)
        data = url + "".join(k + v for k in sorted(multi) for v in sorted(set(multi[k])))
        digest = hmac.new(secret.encode(), data.encode(), algorithm.removeprefix("HMAC_").lower()).digest()
        signature = base64.b64encode(digest).decode()
    return {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": f"key={key},algorithm={algorithm}",
    }


def new_sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


def sms_pairs(
    *, sid: str, from_: str, to: str, body: str = "hello", extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """A realistic inbound SMS form (docs/compliance.md#test-vectors), with blank geo fields."""
    return [
        ("ToCountry", "US"),
        ("ToState", "NY"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", "94105"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", to),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("ReferralNumMedia", "0"),
        ("MessageSid", sid),
        ("AccountSid", TEST_ACCOUNT_SID),
        ("From", from_),
        ("ApiVersion", "2010-04-01"),
        *extra,
    ]


def status_pairs(*, sid: str, status: str, error_code: int | None = None, to: str = "+14155550100") -> list[
    tuple[str, str]
]:
    pairs = [
        ("AccountSid", TEST_ACCOUNT_SID),
        ("From", "+12125550100"),
        ("To", to),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("ApiVersion", "2010-04-01"),
    ]
    if error_code is not None:
        pairs.append(("ErrorCode", str(error_code)))
    return pairs


def signed_form(
    path: str,
    pairs: Pairs,
    *,
    base: str = PUBLIC_BASE,
    query: str = "",
    token: str = TEST_AUTH_TOKEN,
    rule: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) for a form POST to ``path`` signed for ``base`` + path (+ query).

    ``rule``: signed as a Webhooks Rule does (the first test SharedKey, HMAC_SHA256).
    """
    url = base + path + (f"?{query}" if query else "")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        **(rule_headers(url, pairs) if rule else {"X-Twilio-Signature": twilio_signature(url, pairs, token)}),
        "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
    }
    return urlencode(list(pairs)).encode(), headers


def signed_get(
    path: str, pairs: Pairs, *, base: str = PUBLIC_BASE, token: str = TEST_AUTH_TOKEN, rule: bool = False
) -> tuple[str, dict[str, str]]:
    """(path?query, headers) for a GET webhook: the fields are the query, signed as part of the URL only."""
    target = path + "?" + urlencode(list(pairs))
    url = base + target
    headers = {
        **(rule_headers(url, []) if rule else {"X-Twilio-Signature": twilio_signature(url, [], token)}),
        "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
    }
    return target, headers


def meta_signature(raw: bytes, secret: str = META_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def meta_message_body(
    *, page_id: str, sender_id: str, mid: str, text: str = "hi", obj: str = "page", extra_events: Sequence[Any] = ()
) -> bytes:
    event = {
        "sender": {"id": sender_id},
        "recipient": {"id": page_id},
        "timestamp": 1564197467228,
        "message": {"mid": mid, "seq": 0, "text": text},
    }
    payload = {
        "object": obj,
        "entry": [{"id": page_id, "time": 1564197467552, "messaging": [event, *extra_events]}],
    }
    return json.dumps(payload).encode()


def signed_meta(raw: bytes, secret: str = META_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(raw, secret)}
