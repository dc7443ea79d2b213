"""Webhook signatures: Twilio's X-Twilio-Signature and Meta's X-Hub-Signature-256.

Twilio (COMPLIANCE.md §1, "X-Twilio-Signature"): HMAC-SHA1 over the URL Twilio called plus
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

Meta (COMPLIANCE.md §4): ``sha256=`` + hex HMAC-SHA256 of the raw body with the App Secret,
compared in constant time over the bytes as received (never re-serialised JSON).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs

from twilio.request_validator import RequestValidator

from worker.ingest.payloads import decode_params, first_values, parse_form

__all__ = [
    "FormParams",
    "TwilioCheck",
    "check_twilio_request",
    "is_json_variant",
    "meta_signature",
    "meta_signature_valid",
    "public_url",
    "twilio_signature_valid",
]


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


def twilio_signature_valid(
    url: str, *, token: str, signature: str | None, params: dict[str, list[str]] | None = None, body: str | None = None
) -> bool:
    """True when ``signature`` is Twilio's for this URL and form ``params`` (or JSON ``body``).

    ``body`` is used only with the JSON variant (``bodySHA256`` in the URL's query).
    """
    if not signature:
        return False
    url = url.split("#", 1)[0]
    validator = _validator(token)
    query = url.split("?", 1)[1] if "?" in url else ""
    if body is not None and is_json_variant(query):
        return bool(validator.validate(url, body, signature))
    form = FormParams(params or {})
    # One HMAC for the common case: the URL exactly as configured. validate() then tries the
    # port-added and port-removed forms (two more HMACs), one of which is this same URL, so
    # what is accepted does not change.
    if hmac.compare_digest(validator.compute_signature(url, form).encode(), signature.encode("utf-8", "replace")):
        return True
    return bool(validator.validate(url, form, signature))


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


def check_twilio_request(
    *, base: str, path: str, query: str, json_variant: bool, raw: bytes, signature: str | None, token: str
) -> TwilioCheck:
    """The receiver's whole Twilio check: URL as signed, body decoded as Twilio encoded it.

    ``raw`` is decoded as UTF-8 with replacement: Twilio sends UTF-8, and a body that is not
    cannot carry a signature Twilio made, so replacement only affects requests that fail.
    """
    text = raw.decode("utf-8", errors="replace")
    url = public_url(base, path, query)
    if json_variant:
        valid = twilio_signature_valid(url, token=token, signature=signature, body=text)
        try:
            params = decode_params(text, "application/json")
        except ValueError:
            params = {}
        return TwilioCheck(valid, True, params)
    form = parse_form(text)
    valid = twilio_signature_valid(url, token=token, signature=signature, params=form)
    return TwilioCheck(valid, False, first_values(form))
