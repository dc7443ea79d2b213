"""Every twilio-python signature vector of COMPLIANCE.md §7 through the receiver's own check.

``check_twilio_request`` is exactly what POST /webhooks/twilio/* runs: it builds the URL from
the public base, the request path and the raw query, decodes the raw form body, and asks
twilio-python's validator. Each vector goes in as the bytes Twilio would post.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from tests.support.webhooks import twilio_signature
from worker.web.signatures import (
    check_twilio_request,
    meta_signature_valid,
    public_url,
    twilio_signature_valid,
)

TOKEN = "12345"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
RAW = urlencode(PARAMS).encode()


def check(base: str, raw: bytes, signature: str, *, path: str = "/myapp.php", query: str = "foo=1&bar=2",
          json_variant: bool = False) -> bool:
    return check_twilio_request(
        base=base, path=path, query=query, json_variant=json_variant, raw=raw, signature=signature, token=TOKEN
    ).valid


@pytest.mark.parametrize(
    ("base", "signature"),
    [
        pytest.param("https://mycompany.com", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", id="compute_signature"),
        pytest.param("https://mycompany.com:1234", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", id="port-removed"),
        pytest.param("http://mycompany.com:1234", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", id="signed-with-port-1234"),
        pytest.param("https://mycompany.com", "kvajT1Ptam85bY51eRf/AJRuM3w=", id="signed-with-443"),
        pytest.param("http://mycompany.com", "0ZXoZLH/DfblKGATFgpif+LLRf4=", id="signed-with-80"),
    ],
)
def test_twilio_python_vectors_validate(base: str, signature: str) -> None:
    """The published vectors (including both port normalisations) validate through our path."""
    assert check(base, RAW, signature)


def test_vector_fails_with_another_token_or_url() -> None:
    """The same vector is refused under a different token, path, query or parameter value."""
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert not check_twilio_request(
        base="https://mycompany.com", path="/myapp.php", query="foo=1&bar=2", json_variant=False, raw=RAW,
        signature=good, token="54321",
    ).valid
    assert not check("https://mycompany.com", RAW, good, path="/other.php")
    assert not check("https://mycompany.com", RAW, good, query="foo=1&bar=3")
    assert not check("https://mycompany.com", RAW.replace(b"1234", b"1235"), good)
    assert not check("https://mycompany.com", RAW, "")


def test_docs_example_vector() -> None:
    """Twilio docs example (From/Caller +12349013030) validates."""
    params = dict(PARAMS, From="+12349013030", Caller="+12349013030")
    assert check("https://mycompany.com", urlencode(params).encode(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_repeated_keys_sign_sorted_and_deduplicated() -> None:
    """Repeated keys as Twilio posts them (QueryDict form) validate: values de-duplicated, then sorted."""
    raw = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234"
    assert check("https://mycompany.com", raw, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")
    # Keeping only the first value of Digits (a plain-dict parse) would sign differently.
    assert not check("https://mycompany.com", b"Sid=CA123&SidAccount=AC123&Digits=5678",
                     "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


def test_json_body_sha256_vector() -> None:
    """The JSON variant vector: body hash in the query, URL-only signature."""
    body = b'{"property": "value", "boolean": true}'
    digest = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    assert hashlib.sha256(body).hexdigest() == digest
    query = f"foo=1&bar=2&bodySHA256={digest}"
    assert check("https://mycompany.com", body, "a9nBmqA0ju/hNViExpshrM61xv4=", query=query, json_variant=True)
    assert not check("https://mycompany.com", body + b" ", "a9nBmqA0ju/hNViExpshrM61xv4=", query=query,
                     json_variant=True)


def test_json_docs_example_hash() -> None:
    """The docs JSON example's body hash is what a Twilio-signed URL would carry; signature over that URL passes."""
    body = b'{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}'
    digest = "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9"
    assert hashlib.sha256(body).hexdigest() == digest
    url = f"https://example.com/myapp?bodySHA256={digest}"
    signature = twilio_signature(url, [], token=TOKEN)
    assert check("https://example.com", body, signature, path="/myapp", query=f"bodySHA256={digest}",
                 json_variant=True)


def test_connection_override_fragment_is_not_signed() -> None:
    """A '#rc=5&rp=all&sni=y' fragment is stripped: Twilio signs the URL without it (COMPLIANCE.md §7)."""
    signed_url = "https://api.example.com/twilio/conference_status.xml?waiter_id=42"
    signature = twilio_signature(signed_url, [("A", "1")], token=TOKEN)
    with_fragment = signed_url + "#rc=5&rp=all&sni=y"
    assert twilio_signature_valid(with_fragment, token=TOKEN, signature=signature, params={"A": ["1"]})
    # The port-added form of the same URL (ex_twilio_webhook example) validates as well.
    port_sig = twilio_signature("https://api.example.com:443/twilio/conference_status.xml?waiter_id=42", [("A", "1")],
                                token=TOKEN)
    assert twilio_signature_valid(with_fragment, token=TOKEN, signature=port_sig, params={"A": ["1"]})
    assert public_url("https://api.example.com#rc=5", "/x", "") == "https://api.example.com"


def test_blank_values_are_signed() -> None:
    """Twilio signs empty fields (FromCity=''); dropping blanks would break real signatures."""
    pairs = [("Body", "hi"), ("FromCity", ""), ("MessageSid", "SM1")]
    url = "https://hooks.example.test/webhooks/twilio/sms"
    signature = twilio_signature(url, pairs, token=TOKEN)
    raw = urlencode(pairs).encode()
    assert check("https://hooks.example.test", raw, signature, path="/webhooks/twilio/sms", query="")


def test_plus_and_percent_encoding_decode_like_twilio() -> None:
    """'+' is a space and %2B a plus in form encoding; the signature is over the decoded values."""
    pairs = [("Body", "a b+c é"), ("From", "+14155550123")]
    url = "https://h.test/p"
    signature = twilio_signature(url, pairs, token=TOKEN)
    raw = urlencode(pairs).encode()
    assert b"+" in raw
    assert b"%2B" in raw
    assert check("https://h.test", raw, signature, path="/p", query="")


def test_meta_signature_checks_raw_bytes_in_constant_time() -> None:
    """X-Hub-Signature-256 is 'sha256=' + hex HMAC of the raw body; anything else fails."""
    raw = b'{"object":"page","entry":[]}'
    good = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert meta_signature_valid(raw, good, "s3cret")
    assert meta_signature_valid(raw, good.upper().replace("SHA256=", "sha256="), "s3cret")
    assert not meta_signature_valid(raw, good, "other")
    assert not meta_signature_valid(raw + b" ", good, "s3cret")
    assert not meta_signature_valid(raw, None, "s3cret")
    assert not meta_signature_valid(raw, good.removeprefix("sha256="), "s3cret")
    assert not meta_signature_valid(raw, "sha1=" + hmac.new(b"s3cret", raw, hashlib.sha1).hexdigest(), "s3cret")
