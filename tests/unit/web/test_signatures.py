"""Every twilio-python signature vector through the receiver's own check (docs/compliance.md#test-vectors).

``check_twilio_request`` is exactly what POST /webhooks/twilio/* runs: it builds the URL from
the public base, the request path and the raw query, decodes the raw form body, and asks
twilio-python's validator. Each vector goes in as the bytes Twilio would post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from tests.support.webhooks import twilio_signature
from worker.web.signatures import (
    SigningKey,
    SigningKeyRefused,
    TwilioCheck,
    check_twilio_request,
    meta_signature_valid,
    public_url,
    signing_key,
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
    """A '#rc=5&rp=all&sni=y' fragment is stripped: Twilio signs the URL without it."""
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


# Webhook Rules (docs/compliance.md#twilio-webhook-signatures): same signed string,
# SharedKey secret, algorithm named in X-Twilio-Webhooks-Signature-Settings.
SHARED = {"webhooks_sharedkey_a": "shared-secret-a", "webhooks_sharedkey_b": "shared:secret:b"}
RULE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def rule_check(raw: bytes, signature: str | None, header: str | None, *, base: str = "https://mycompany.com",
               query: str = "foo=1&bar=2", json_variant: bool = False, method: str = "POST") -> TwilioCheck:
    return check_twilio_request(
        base=base, path="/myapp.php", query=query, json_variant=json_variant, raw=raw, signature=signature,
        token=TOKEN, settings_header=header, shared_keys=SHARED, method=method,  # type: ignore[arg-type]
    )


def by_hand_sha256(secret: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented string (URL, then sorted name+value), HMAC-SHA256, base64: written out, no library."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(secret.encode(), data.encode(), hashlib.sha256).digest()).decode()


def test_rule_signature_computed_by_hand_validates() -> None:
    """An HMAC-SHA256 base64 signature with the SharedKey the header names is accepted; the key name is reported."""
    signature = by_hand_sha256("shared-secret-a", RULE_URL, PARAMS)
    result = rule_check(RAW, signature, "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256")
    assert result.valid
    assert result.key_name == "webhooks_sharedkey_a"
    assert result.params["CallSid"] == "CA1234567890ABCDE"
    # Spacing and the algorithm's case are not significant (twilio-python upper-cases it).
    assert rule_check(RAW, signature, " key = webhooks_sharedkey_a , algorithm = hmac_sha256 ").valid


def test_rule_signature_second_key_with_colon_in_secret() -> None:
    """Any configured key validates (rotation); the secret is everything after the name's first ':'."""
    signature = by_hand_sha256("shared:secret:b", RULE_URL, PARAMS)
    assert rule_check(RAW, signature, "key=webhooks_sharedkey_b,algorithm=HMAC_SHA256").valid
    assert not rule_check(RAW, signature, "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256").valid


@pytest.mark.parametrize(
    ("header", "reason", "key_name"),
    [
        pytest.param("key=webhooks_sharedkey_zzz,algorithm=HMAC_SHA256", "unknown_key", "webhooks_sharedkey_zzz",
                     id="unknown-key"),
        pytest.param("key=webhooks_sharedkey_a,algorithm=HMAC_SHA512", "unsupported_algorithm",
                     "webhooks_sharedkey_a", id="sha512"),
        pytest.param("key=webhooks_sharedkey_a,algorithm=HMAC_SHA1", "unsupported_algorithm", "webhooks_sharedkey_a",
                     id="sha1-with-shared-key"),
        pytest.param("key=webhooks_sharedkey_a", "unsupported_algorithm", "webhooks_sharedkey_a", id="no-algorithm"),
        pytest.param("algorithm=HMAC_SHA256", "malformed_settings_header", None, id="no-key"),
        pytest.param("key=,algorithm=HMAC_SHA256", "malformed_settings_header", None, id="empty-key"),
        pytest.param("webhooks_sharedkey_a", "malformed_settings_header", None, id="no-equals"),
        pytest.param("key=webhooks_sharedkey_a,key=webhooks_sharedkey_b,algorithm=HMAC_SHA256",
                     "malformed_settings_header", None, id="key-twice"),
    ],
)
def test_settings_header_we_cannot_check_is_refused(header: str, reason: str, key_name: str | None) -> None:
    """Unknown key names, algorithms we do not implement and malformed headers fail, with a reason for the log."""
    signature = by_hand_sha256("shared-secret-a", RULE_URL, PARAMS)
    result = rule_check(RAW, signature, header)
    assert not result.valid
    assert (result.reason, result.key_name) == (reason, key_name)
    with pytest.raises(SigningKeyRefused):
        signing_key(header, token=TOKEN, shared_keys=SHARED)


def test_settings_header_means_no_auth_token_fallback() -> None:
    """A request that says it was signed with a SharedKey but carries the Auth Token signature is refused."""
    classic = "RSOYDt4T1cUTdK1PDd93/VVr8B8="  # the published Auth Token vector for RAW at RULE_URL
    assert check("https://mycompany.com", RAW, classic)
    result = rule_check(RAW, classic, "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256")
    assert (result.valid, result.reason) == (False, "mismatch")
    # Nor does the shared secret with the classic algorithm pass as a rule signature.
    sha1_with_shared = twilio_signature(RULE_URL, list(PARAMS.items()), token="shared-secret-a")
    assert not rule_check(RAW, sha1_with_shared, "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256").valid


def test_blank_settings_header_is_the_classic_path() -> None:
    """An empty header means the Auth Token (as in twilio-python and twilio-node), so the classic vector passes."""
    assert rule_check(RAW, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "").valid
    assert signing_key("  ", token=TOKEN, shared_keys=SHARED) == SigningKey(TOKEN, "HMAC_SHA1")


def test_rule_signature_tampered_or_for_another_url_fails() -> None:
    """Changing a parameter, the query or the path invalidates a SharedKey signature like a classic one."""
    header = "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256"
    signature = by_hand_sha256("shared-secret-a", RULE_URL, PARAMS)
    assert not rule_check(RAW.replace(b"1234", b"1235"), signature, header).valid
    assert not rule_check(RAW, signature, header, query="foo=1&bar=3").valid
    assert rule_check(RAW, None, header).reason == "missing_signature"


@pytest.mark.parametrize(
    ("base", "signed_url"),
    [
        pytest.param("https://mycompany.com", "https://mycompany.com:443/myapp.php?foo=1&bar=2", id="443-added"),
        pytest.param("https://mycompany.com:8443", "https://mycompany.com/myapp.php?foo=1&bar=2", id="port-removed"),
    ],
)
def test_rule_signature_uses_the_same_url_candidates(base: str, signed_url: str) -> None:
    """Port added and port removed are accepted as on the classic path."""
    signature = by_hand_sha256("shared-secret-a", signed_url, PARAMS)
    assert rule_check(RAW, signature, "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256", base=base).valid


def test_rule_signature_drops_the_connection_override_fragment() -> None:
    """A '#rc=3&rp=ct,rt,5xx' fragment is not part of what a Rule signs either."""
    signature = by_hand_sha256("shared-secret-a", RULE_URL, PARAMS)
    params = {k: [v] for k, v in PARAMS.items()}
    assert twilio_signature_valid(RULE_URL + "#rc=3&rp=ct,rt,5xx", token="shared-secret-a", signature=signature,
                                  params=params, algorithm="HMAC_SHA256")
    assert not twilio_signature_valid(RULE_URL + "#rc=3&rp=ct,rt,5xx", token="shared-secret-a", signature=signature,
                                      params=params)


def test_rule_signature_json_variant() -> None:
    """The bodySHA256 variant signed with a SharedKey: URL-only HMAC-SHA256 plus the body hash."""
    body = b'{"property": "value", "boolean": true}'
    query = f"bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = by_hand_sha256("shared-secret-a", f"https://mycompany.com/myapp.php?{query}", {})
    header = "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256"
    assert rule_check(body, signature, header, query=query, json_variant=True).valid
    assert not rule_check(body + b" ", signature, header, query=query, json_variant=True).valid


def test_get_signature_is_over_the_url_with_its_query_only() -> None:
    """GET: the parameters are the query, signed as part of the URL and not appended again."""
    query = urlencode(PARAMS)
    url = f"https://mycompany.com/myapp.php?{query}"
    signature = twilio_signature(url, [], token=TOKEN)
    result = rule_check(query.encode(), signature, None, query=query, method="GET")
    assert result.valid
    assert result.params["From"] == "+14158675309"
    # The POST-style signature (params appended after the URL) is not what Twilio signs for GET.
    assert not rule_check(query.encode(), twilio_signature(url, list(PARAMS.items()), token=TOKEN), None,
                          query=query, method="GET").valid
    # A changed query value fails.
    tampered = query.replace("1234", "1235")
    assert not rule_check(tampered.encode(), signature, None, query=tampered, method="GET").valid
    # Rule-signed GET.
    rule_sig = by_hand_sha256("shared-secret-a", url, {})
    assert rule_check(query.encode(), rule_sig, "key=webhooks_sharedkey_a,algorithm=HMAC_SHA256", query=query,
                      method="GET").valid
