"""Provider payloads into typed values: Twilio SMS/MMS, Twilio status callbacks, Meta.

Pure functions (no database, no network), shared by the receiver (which needs the event id
before storing) and the ingest (which needs everything). Anything that cannot be acted on
raises ``BadInput`` with a sentence an operator can read; the inbox row is then marked
failed with it (`msgworker inbox failed`).

Field names and shapes: docs/compliance.md#twilio-inbound-webhook,
docs/compliance.md#status-callbacks and docs/compliance.md#meta-webhooks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

__all__ = [
    "BadInput",
    "MetaEvent",
    "MetaPayload",
    "StatusCallback",
    "TwilioSms",
    "body_digest",
    "decode_params",
    "first_values",
    "parse_form",
    "parse_meta",
    "parse_status_callback",
    "parse_twilio_sms",
    "sms_event_id",
    "status_event_id",
]

# Twilio sids are two letters and 32 hex digits; accept any short token of that alphabet so
# a new prefix does not break ingest, and refuse anything that could not be a sid.
_SID_RE: Final = re.compile(r"[A-Za-z0-9]{2,64}")
_STATUS_RE: Final = re.compile(r"[a-z_-]{1,32}")
# Geo and service fields kept on the message as evidence (never From/To themselves).
_SMS_META_FIELDS: Final = (
    "FromCity",
    "FromState",
    "FromZip",
    "FromCountry",
    "OptOutType",
    "MessagingServiceSid",
    "AccountSid",
    "SmsStatus",
    "ApiVersion",
)
# Status-callback fields never stored in delivery_events.raw: numbers and text.
_STATUS_DROP: Final = frozenset({"From", "To", "Body"})
MAX_MEDIA: Final = 20
_OPT_OUT_TYPES: Final = frozenset({"STOP", "START", "HELP"})


class BadInput(ValueError):
    """Raised when a stored payload cannot be acted on; the message is the readable reason."""


def body_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _unquote(part: str) -> str:
    if "+" in part:
        part = part.replace("+", " ")
    return unquote(part, errors="replace") if "%" in part else part


def parse_form(text: str) -> dict[str, list[str]]:
    """Form fields with every value of a repeated key, blanks kept (Twilio signs them).

    Exactly ``urllib.parse.parse_qsl(text, keep_blank_values=True, errors="replace")``
    (a property test holds it to that), without its per-field overhead: this runs twice per
    webhook, in the receiver for the signature and in the ingest.
    """
    params: dict[str, list[str]] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        params.setdefault(_unquote(key), []).append(_unquote(value))
    return params


def first_values(params: Mapping[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in params.items() if v}


def decode_params(text: str, content_type: str | None) -> dict[str, str]:
    """The fields of a stored Twilio body: form-encoded, or a JSON object (bodySHA256)."""
    if content_type and content_type.split(";", 1)[0].strip().lower() == "application/json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"JSON body does not parse: {exc}") from exc
        if not isinstance(data, dict):
            raise BadInput("JSON body is not an object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return first_values(parse_form(text))


def _sid(params: Mapping[str, str], name: str = "MessageSid") -> str:
    value = params.get(name) or params.get("SmsMessageSid") or params.get("SmsSid") or ""
    if not _SID_RE.fullmatch(value):
        raise BadInput(f"{name} is missing or malformed")
    return value


def sms_event_id(params: Mapping[str, str], raw: bytes) -> str:
    """The inbox dedupe key for an SMS webhook: MessageSid, else a digest of the body."""
    try:
        return _sid(params)
    except BadInput:
        return "sha256:" + body_digest(raw)


def status_event_id(params: Mapping[str, str], raw: bytes) -> str:
    """The inbox dedupe key of a status callback: MessageSid:MessageStatus (one row per status)."""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    try:
        sid = _sid(params)
    except BadInput:
        return "sha256:" + body_digest(raw)
    if not _STATUS_RE.fullmatch(status):
        return "sha256:" + body_digest(raw)
    return f"{sid}:{status}"


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if -(2**31) <= number < 2**31 else None


@dataclass(frozen=True, slots=True)
class TwilioSms:
    message_sid: str
    from_raw: str
    to_raw: str
    body: str
    media: list[dict[str, str]]
    num_segments: int | None
    opt_out_type: str | None
    messaging_service_sid: str | None
    meta: dict[str, str] = field(default_factory=dict)


def parse_twilio_sms(params: Mapping[str, str]) -> TwilioSms:
    sid = _sid(params)
    from_raw = params.get("From", "")
    to_raw = params.get("To", "")
    if not from_raw.strip():
        raise BadInput("From is missing")
    if not to_raw.strip():
        raise BadInput("To is missing")
    body = params.get("Body", "")
    if "\x00" in body:
        raise BadInput("Body contains a NUL character")
    media: list[dict[str, str]] = []
    for i in range(MAX_MEDIA):
        url = params.get(f"MediaUrl{i}")
        if url is None:
            break
        media.append({"url": url, "content_type": params.get(f"MediaContentType{i}", "")})
    opt_out = (params.get("OptOutType") or "").strip().upper() or None
    return TwilioSms(
        message_sid=sid,
        from_raw=from_raw,
        to_raw=to_raw,
        body=body,
        media=media,
        num_segments=_int_or_none(params.get("NumSegments")),
        opt_out_type=opt_out if opt_out in _OPT_OUT_TYPES else None,
        messaging_service_sid=params.get("MessagingServiceSid") or None,
        meta={k: params[k] for k in _SMS_META_FIELDS if params.get(k)},
    )


@dataclass(frozen=True, slots=True)
class StatusCallback:
    message_sid: str
    status: str
    error_code: int | None
    # The callback's fields without phone numbers or text, kept as evidence.
    raw: dict[str, str]


def parse_status_callback(params: Mapping[str, str]) -> StatusCallback:
    sid = _sid(params)
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not _STATUS_RE.fullmatch(status):
        raise BadInput("MessageStatus is missing or malformed")
    raw_code = params.get("ErrorCode")
    error_code = _int_or_none(raw_code)
    if raw_code and raw_code.strip() and error_code is None:
        raise BadInput("ErrorCode is not an integer")
    return StatusCallback(
        message_sid=sid,
        status=status,
        error_code=error_code,
        raw={k: v for k, v in params.items() if k not in _STATUS_DROP},
    )


@dataclass(frozen=True, slots=True)
class MetaEvent:
    channel: str  # "facebook" | "instagram"
    page_id: str  # entry[].id: the page / Instagram account the webhook is about
    recipient_id: str | None  # messaging[].recipient.id (the same id for inbound messages)
    sender_id: str
    mid: str
    body: str
    media: list[dict[str, str]]
    kind: str  # "message" | "postback"
    timestamp_ms: int | None
    where: str  # "entry[0].messaging[1]", for error messages


@dataclass(frozen=True, slots=True)
class MetaPayload:
    channel: str
    events: list[MetaEvent]
    skipped: int
    errors: list[str]


_META_CHANNELS: Final = {"page": "facebook", "instagram": "instagram"}


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 64 and "\x00" not in value:
        return value.strip()
    return None


def _meta_event(channel: str, entry_id: str, ev: Any, where: str) -> MetaEvent | None:
    """One messaging[] item as an event, None when it is not a message (BadInput if broken)."""
    if not isinstance(ev, dict):
        raise BadInput(f"{where} is not an object")
    message = ev.get("message")
    postback = ev.get("postback")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None  # our own outbound message, echoed back
        kind = "message"
    elif isinstance(postback, dict):
        kind = "postback"
    else:
        return None  # read, delivery, reaction, optin, ...: nothing to store
    sender = _id((ev.get("sender") or {}).get("id") if isinstance(ev.get("sender"), dict) else None)
    if sender is None:
        raise BadInput(f"{where}: sender.id is missing or malformed")
    recipient = ev.get("recipient")
    page_id = _id(recipient.get("id")) if isinstance(recipient, dict) else None
    timestamp = ev.get("timestamp")
    ts = timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None
    media: list[dict[str, str]] = []
    if kind == "message":
        assert isinstance(message, dict)
        mid = message.get("mid")
        text = message.get("text")
        attachments = message.get("attachments")
        if isinstance(attachments, list):
            for att in attachments[:MAX_MEDIA]:
                if isinstance(att, dict):
                    payload = att.get("payload")
                    url = payload.get("url") if isinstance(payload, dict) else None
                    media.append({"url": str(url or ""), "content_type": str(att.get("type") or "")})
    else:
        assert isinstance(postback, dict)
        mid = postback.get("mid") or (f"postback:{sender}:{ts}" if ts is not None else None)
        text = postback.get("title") or postback.get("payload")
    if not isinstance(mid, str) or not mid or len(mid) > 255:
        raise BadInput(f"{where}: message id (mid) is missing or malformed")
    body = text if isinstance(text, str) else ""
    if "\x00" in body:
        raise BadInput(f"{where}: text contains a NUL character")
    return MetaEvent(
        channel=channel,
        page_id=entry_id,
        recipient_id=page_id,
        sender_id=sender,
        mid=mid,
        body=body,
        media=media,
        kind=kind,
        timestamp_ms=ts,
        where=where,
    )


def parse_meta(text: str) -> MetaPayload:
    """Every message/postback in a Meta webhook body; echoes, reads and deliveries skipped.

    A broken item does not hide the good ones: it becomes an entry in ``errors``.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInput("body is not a JSON object")
    obj = data.get("object")
    channel = _META_CHANNELS.get(obj) if isinstance(obj, str) else None
    if channel is None:
        raise BadInput(f"unsupported object {str(obj)[:40]!r} (expected 'page' or 'instagram')")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise BadInput("entry is missing or not a list")
    events: list[MetaEvent] = []
    errors: list[str] = []
    skipped = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append(f"entry[{i}] is not an object")
            continue
        entry_id = _id(entry.get("id"))
        messaging = entry.get("messaging")
        if messaging is None:
            skipped += 1  # e.g. "changes" (feed) notifications: not messages
            continue
        if entry_id is None:
            errors.append(f"entry[{i}].id is missing or malformed")
            continue
        if not isinstance(messaging, list):
            errors.append(f"entry[{i}].messaging is not a list")
            continue
        for j, ev in enumerate(messaging):
            where = f"entry[{i}].messaging[{j}]"
            try:
                parsed = _meta_event(channel, entry_id, ev, where)
            except BadInput as exc:
                errors.append(str(exc))
                continue
            if parsed is None:
                skipped += 1
            else:
                events.append(parsed)
    return MetaPayload(channel=channel, events=events, skipped=skipped, errors=errors)
