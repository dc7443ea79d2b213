"""Webhook signatures: Twilio's X-Twilio-Signature and Meta's X-Hub-Signature-256.

Twilio (docs/compliance.md#twilio-webhook-signatures): HMAC-SHA1 over the URL Twilio called plus
the sorted POST parameters, keyed with the Auth Token. We delegate to twilio-python's
``RequestValidator`` (the reference implementation: it also accepts the URL with and
without its port) and are responsible for two inputs:

- the URL: ``PUBLIC_BASE_URL`` + the request path + the raw query string, because behind a
  proxy the app sees another host; a connection-override fragment (``#rc=...``) is never
  part of what Twilio signed, so it is dropped.
- the parameters: every value of a repeated key, in an object with ``getlist`` (the
  QueryDict shape the validator understands), so repeated keys sign exactly like Twilio.
  Blank values are kept: Twilio signs ``FromCity`` even when it is empty.

The JSON variant (``bodySHA256`` in the query) validates the body's SHA-256 and the URL.

GET webhooks (docs/compliance.md#twilio-inbound-webhook): the parameters arrive in the
query string, so the signed string is the full URL with its query and no parameters after it.

Webhook Rules (docs/compliance.md#twilio-webhook-signatures): when a Rule matches,
Twilio signs the same string with the Setting's SharedKey and the algorithm it names in
``X-Twilio-Webhooks-Signature-Settings: key=<name>,algorithm=HMAC_SHA256``; the signature
is still base64 in ``X-Twilio-Signature``. The header decides the key: a request that carries
it is never checked against the Auth Token (the header says how it was signed, and that is
also what twilio-node's middleware does). Unknown key names and algorithms we do not
implement are refused, never guessed at.

Meta (docs/compliance.md#meta-webhooks): ``sha256=`` + hex HMAC-SHA256 of the raw body with the
App Secret, compared in constant time over the bytes as received (never re-serialised JSON).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from twilio.request_validator import RequestValidator

from worker.ingest.payloads import decode_params, first_values, parse_form

__all__ = [
    "CLASSIC_ALGORITHM",
    "SHARED_KEY_ALGORITHMS",
    "SIGNATURE_SETTINGS_HEADER",
    "FormParams",
    "SigningKey",
    "SigningKeyRefused",
    "TwilioCheck",
    "check_twilio_request",
    "is_json_variant",
    "meta_signature",
    "meta_signature_valid",
    "public_url",
    "signing_key",
    "twilio_signature_valid",
]

SIGNATURE_SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
# What the Auth Token signs with; the only algorithm when the settings header is absent.
CLASSIC_ALGORITHM = "HMAC_SHA1"
# What we accept for a SharedKey. Anything else is refused (twilio-python would compute
# HMAC_SHA1 as well, but Webhook Rules are the HMAC-SHA256 variant; widen on purpose only).
SHARED_KEY_ALGORITHMS = frozenset({"HMAC_SHA256"})


class FormParams(dict[str, list[str]]):
    """Form fields with all their values, in the MultiDict shape RequestValidator looks for.

    ``getall`` is the first accessor it tries (a missing one costs an exception per field).
    """

    def getall(self, name: str) -> list[str]:
        return self[name]

    def getlist(self, name: str) -> list[str]:
        return self[name]


def public_url(base: str, path: str, query: str) -> str:
    """The URL the provider called, as it signed it (fragment removed)."""
    url = base.rstrip("/") + path
    if query:
        url += "?" + query
    return url.split("#", 1)[0]


def is_json_variant(query: str) -> bool:
    return "bodySHA256" in parse_qs(query, keep_blank_values=True)


@functools.lru_cache(maxsize=8)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The secret and algorithm a request says it was signed with."""

    secret: str
    algorithm: str
    # The SharedKey's name from the settings header; None for the Auth Token.
    name: str | None = None


class SigningKeyRefused(Exception):
    """The settings header names a key or algorithm we cannot check: the request is refused."""

    def __init__(self, reason: str, *, key_name: str | None = None, algorithm: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_name = key_name
        self.algorithm = algorithm


def _settings_fields(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not name or name in fields:
            raise SigningKeyRefused("malformed_settings_header")
        fields[name] = value.strip()
    return fields


def signing_key(settings_header: str | None, *, token: str, shared_keys: Mapping[str, str]) -> SigningKey:
    """The Auth Token without ``X-Twilio-Webhooks-Signature-Settings``, else the SharedKey it names.

    An absent or blank header means the Auth Token, as in twilio-python and twilio-node.
    Raises SigningKeyRefused for a malformed header, a key name not in
    TWILIO_WEBHOOK_SHARED_KEYS, or an algorithm outside SHARED_KEY_ALGORITHMS.
    """
    if settings_header is None or not settings_header.strip():
        return SigningKey(token, CLASSIC_ALGORITHM)
    fields = _settings_fields(settings_header)
    name = fields.get("key") or None
    algorithm = fields.get("algorithm") or None
    if name is None:
        raise SigningKeyRefused("malformed_settings_header", algorithm=algorithm)
    secret = shared_keys.get(name)
    if secret is None:
        raise SigningKeyRefused("unknown_key", key_name=name, algorithm=algorithm)
    if algorithm is None or algorithm.upper() not in SHARED_KEY_ALGORITHMS:
        raise SigningKeyRefused("unsupported_algorithm", key_name=name, algorithm=algorithm)
    return SigningKey(secret, algorithm.upper(), name)


def twilio_signature_valid(
    url: str,
    *,
    token: str,
    signature: str | None,
    params: dict[str, list[str]] | None = None,
    body: str | None = None,
    algorithm: str = CLASSIC_ALGORITHM,
) -> bool:
    """True when ``signature`` is Twilio's for this URL and form ``params`` (or JSON ``body``).

    ``body`` is used only with the JSON variant (``bodySHA256`` in the URL's query).
    ``token`` is the signing secret: the Auth Token, or a SharedKey with its ``algorithm``.
    """
    if not signature:
        return False
    url = url.split("#", 1)[0]
    validator = _validator(token)
    query = url.split("?", 1)[1] if "?" in url else ""
    if body is not None and is_json_variant(query):
        return bool(validator.validate(url, body, signature, algorithm))
    form = FormParams(params or {})
    # One HMAC for the common case: the URL exactly as configured. validate() then tries the
    # port-added and port-removed forms (two more HMACs), one of which is this same URL, so
    # what is accepted does not change.
    expected = validator.compute_signature(url, form, algorithm)
    if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return True
    return bool(validator.validate(url, form, signature, algorithm))


def meta_signature(raw: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def meta_signature_valid(raw: bytes, header: str | None, secret: str) -> bool:
    if not header:
        return False
    expected = meta_signature(raw, secret)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class TwilioCheck:
    valid: bool
    json_variant: bool
    # First value of each field (the JSON object's fields for the JSON variant).
    params: dict[str, str]
    # Why it is not valid, for the log: missing_signature, mismatch, or a SigningKeyRefused reason.
    reason: str | None = None
    # The SharedKey name the request named (never its secret), when it named one.
    key_name: str | None = None


def check_twilio_request(
    *,
    base: str,
    path: str,
    query: str,
    json_variant: bool,
    raw: bytes,
    signature: str | None,
    token: str,
    settings_header: str | None = None,
    shared_keys: Mapping[str, str] | None = None,
    method: Literal["POST", "GET"] = "POST",
) -> TwilioCheck:
    """The receiver's whole Twilio check: key as the request names it, URL as signed, body decoded as Twilio encoded it.

    ``raw`` is the body for POST and the raw query string for GET (whose parameters are the
    query, signed as part of the URL). It is decoded as UTF-8 with replacement: Twilio sends
    UTF-8, and bytes that are not cannot carry a signature Twilio made, so replacement only
    affects requests that fail.
    """
    text = raw.decode("utf-8", errors="replace")
    url = public_url(base, path, query)
    json_variant = json_variant and method == "POST"
    try:
        key = signing_key(settings_header, token=token, shared_keys=shared_keys or {})
    except SigningKeyRefused as refused:
        return TwilioCheck(False, json_variant, {}, refused.reason, refused.key_name)
    if json_variant:
        valid = twilio_signature_valid(url, token=key.secret, signature=signature, body=text, algorithm=key.algorithm)
        try:
            params = decode_params(text, "application/json")
        except ValueError:
            params = {}
    else:
        form = parse_form(text)
        signed = form if method == "POST" else {}
        valid = twilio_signature_valid(url, token=key.secret, signature=signature, params=signed,
                                       algorithm=key.algorithm)
        params = first_values(form)
    reason = None if valid else ("mismatch" if signature else "missing_signature")
    return TwilioCheck(valid, json_variant, params, reason, key.name)
