"""Webhook endpoints: verify, cap, store, kick, answer. Nothing else happens in a request.

Order per POST (the shape of warehouse's SES notification view):
1. content type (415) and body size (413, by Content-Length and by counting the bytes
   actually read, for chunked bodies); nothing is stored.
2. signature against the public URL, with the Auth Token or the Webhook Rules SharedKey the
   request names (403); nothing is stored.
3. the raw body, encrypted, into core.webhook_inbox, idempotent on the provider's event id,
   committed. A duplicate gets the same success answer.
4. a coalesced kick of the drain task (worker/ingest/kick.py), after the commit, made by the
   process's kicker thread (worker/web/kicker.py) a few milliseconds later.
5. the answer: empty TwiML for an inbound SMS, 200 for the rest.

Twilio may be configured to call with GET instead (docs/compliance.md#twilio-inbound-webhook):
then the parameters are the query string, capped like a body, signed as part of the URL, and
stored as the same form-encoded text a POST body would be, so ingest cannot tell the two apart.
Any body on a GET is neither read, signed nor stored.

Never a 2xx for a webhook that was not stored, and never a 500: a database that cannot take
the row, or does not commit it within ``WEBHOOK_STORE_TIMEOUT``, or too many webhooks already
waiting for it (``WEBHOOK_MAX_WAITING``), gives 503 with Retry-After; anything unexpected is
logged and gives 503 too. Note
that Twilio retries a 5xx only when the URL's connection overrides ask for it (default
``rp=ct``; docs/compliance.md#webhook-retries-and-connection-overrides), so configure
``#rc=3&rp=ct,rt,5xx`` and a Fallback URL (docs/inbound.md).

A correctly signed body that is malformed (no MessageSid, not JSON, bad numbers) is stored
and marked failed by the worker with a readable reason, so nothing signed is ever lost.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from compliance.errors import InvalidNumber
from worker import metrics
from worker.ingest.kick import request_drain
from worker.ingest.payloads import body_digest, sms_event_id, status_event_id
from worker.phone import PhoneNumber
from worker.settings import get_settings
from worker.web import inbox_store
from worker.web.kicker import Kicker
from worker.web.signatures import (
    SIGNATURE_SETTINGS_HEADER,
    TwilioCheck,
    check_twilio_request,
    is_json_variant,
    meta_signature_valid,
)

__all__ = ["EMPTY_TWIML", "routes"]

log = structlog.get_logger(__name__)

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_RETRY_AFTER = {"Retry-After": "5"}


class _TooLarge(Exception):
    pass


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(text, status_code=status, headers=headers)


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _header(request: Request, name: str, limit: int) -> str | None:
    value = request.headers.get(name)
    if value is None:
        return None
    return value.replace("\x00", "")[:limit] or None


def _path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else str(request.scope.get("path", "/"))


_kicker = Kicker(request_drain)


async def _store(
    provider: str,
    event_id: str,
    delivery_id: str | None,
    content_type: str | None,
    text: str,
    from_index: bytes | None = None,
) -> Response | None:
    """Store (committed on return) and kick; a 503 response when the database cannot take it, else None.

    On the event loop, committed in groups with concurrent webhooks (inbox_store.GroupStore):
    no thread-pool hop, and one COMMIT for all the webhooks waiting at that moment.
    """
    try:
        created = await inbox_store.group_store().store(
            provider=provider, event_id=event_id, delivery_id=delivery_id, content_type=content_type, payload=text,
            from_index=from_index,
        )
    except inbox_store.StoreUnavailable as exc:
        log.warning("webhook_not_stored", provider=provider, reason=exc.reason, error=str(exc))
        return _plain(503, "storage unavailable, retry later\n", _RETRY_AFTER)
    # Kick even for a duplicate: if the first copy is still pending, this is its wake-up.
    # The kick itself runs on the process's kicker thread, coalesced (worker/web/kicker.py).
    _kicker.committed()
    if not created:
        log.info("webhook_duplicate", provider=provider, event_id=event_id)
    return None


def _sender_index(params: Mapping[str, str]) -> bytes | None:
    """An inbound SMS sender's blind index, stored with the row: until ingest has applied the
    text (a STOP, say), the send gate defers texts to this number (worker/outbound/facts.py).
    The same parse ingest makes (worker.phone), then one HMAC. None when From is not a number:
    ingest then fails the row with the reason."""
    try:
        return PhoneNumber.parse(params.get("From", "")).index
    except InvalidNumber:
        return None


def _log_refused(request: Request, provider: str, check: TwilioCheck) -> None:
    # The key name comes from the request: logged cut short, printable only; never a secret.
    key = "".join(c for c in check.key_name[:64] if c.isprintable()) if check.key_name else None
    log.warning(
        "webhook_signature_invalid",
        provider=provider,
        method=request.method,
        path=_path(request),
        signed=bool(request.headers.get("x-twilio-signature")),
        reason=check.reason,
        key=key,
    )


async def _twilio(request: Request, provider: str) -> Response:
    settings = get_settings()
    cap = settings.WEBHOOK_MAX_BODY_BYTES
    raw_query: bytes = request.scope.get("query_string", b"")
    query = raw_query.decode("latin-1")
    content_type = _header(request, "content-type", 128)
    if request.method == "GET":
        if len(raw_query) > cap:
            log.warning("webhook_too_large", provider=provider, method="GET", cap=cap)
            return _plain(413, "query too large\n")
        raw, json_variant, stored_type = raw_query, False, _FORM
    elif request.method == "POST":
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        json_variant = mime == _JSON and is_json_variant(query)
        if mime not in ("", _FORM) and not json_variant:
            return _plain(415, f"expected {_FORM}\n")
        try:
            raw = await _read_capped(request, cap)
        except _TooLarge:
            log.warning("webhook_too_large", provider=provider, cap=cap)
            return _plain(413, "body too large\n")
        stored_type = _JSON if json_variant else (content_type or _FORM)
    else:  # HEAD, which Starlette adds to every GET route: never stored.
        return _plain(405, "method not allowed\n", {"Allow": "GET, POST"})
    check = check_twilio_request(
        base=settings.PUBLIC_BASE_URL,
        path=_path(request),
        query=query,
        json_variant=json_variant,
        raw=raw,
        signature=request.headers.get("x-twilio-signature"),
        token=settings.secret("TWILIO_AUTH_TOKEN"),
        settings_header=request.headers.get(SIGNATURE_SETTINGS_HEADER),
        shared_keys=settings.twilio_shared_keys(),
        method="GET" if request.method == "GET" else "POST",
    )
    if not check.valid:
        _log_refused(request, provider, check)
        return _plain(403, "invalid signature\n")
    params = check.params
    sms = provider == "twilio_sms"
    event_id = sms_event_id(params, raw) if sms else status_event_id(params, raw)
    failure = await _store(
        provider,
        event_id,
        _header(request, "i-twilio-idempotency-token", 255),
        stored_type,
        raw.decode("utf-8", errors="replace"),
        _sender_index(params) if sms else None,
    )
    if failure is not None:
        return failure
    if provider == "twilio_sms":
        return Response(EMPTY_TWIML, media_type="text/xml")
    return Response(b"", status_code=200)


async def _guarded(request: Request, provider: str) -> Response:
    try:
        if provider == "meta":
            return await _meta(request)
        return await _twilio(request, provider)
    except ClientDisconnect:
        return _plain(400, "client disconnected\n")
    except Exception:
        log.exception("webhook_unexpected_error", provider=provider)
        return _plain(503, "temporarily unavailable\n", _RETRY_AFTER)


async def twilio_sms(request: Request) -> Response:
    """Inbound SMS/MMS (Twilio messaging webhook): stored, then answered with empty TwiML."""
    return metrics.webhook("twilio_sms", await _guarded(request, "twilio_sms"))


async def twilio_status(request: Request) -> Response:
    """Outbound message status callbacks."""
    return metrics.webhook("twilio_status", await _guarded(request, "twilio_status"))


async def meta_verify(request: Request) -> Response:
    """Meta's subscription handshake: echo hub.challenge when mode and verify token match."""
    q = request.query_params
    mode = q.get("hub.mode")
    token = q.get("hub.verify_token") or ""
    challenge = q.get("hub.challenge") or ""
    expected = get_settings().secret("META_VERIFY_TOKEN")
    if mode == "subscribe" and secrets.compare_digest(token.encode(), expected.encode()) and len(challenge) <= 512:
        return _plain(200, challenge)
    log.warning("meta_verify_refused", mode=(mode or "")[:20])
    return _plain(403, "verification failed\n")


async def _meta(request: Request) -> Response:
    settings = get_settings()
    try:
        raw = await _read_capped(request, settings.WEBHOOK_MAX_BODY_BYTES)
    except _TooLarge:
        log.warning("webhook_too_large", provider="meta", cap=settings.WEBHOOK_MAX_BODY_BYTES)
        return _plain(413, "body too large\n")
    header = request.headers.get("x-hub-signature-256")
    if not meta_signature_valid(raw, header, settings.secret("META_APP_SECRET")):
        log.warning("webhook_signature_invalid", provider="meta", signed=bool(header))
        return _plain(403, "invalid signature\n")
    # Meta has no single id per POST (a retry resends the same body); individual message
    # ids are deduplicated when the messages are inserted.
    failure = await _store("meta", "sha256:" + body_digest(raw), None, _header(request, "content-type", 128) or _JSON,
                           raw.decode("utf-8", errors="replace"))
    if failure is not None:
        return failure
    return Response(json.dumps({"status": "ok"}).encode(), media_type=_JSON)


async def meta_events(request: Request) -> Response:
    """Messenger and Instagram message notifications."""
    return metrics.webhook("meta", await _guarded(request, "meta"))


# Plain Starlette routes: these endpoints take the raw request and need none of FastAPI's
# parameter machinery (which costs measurable CPU per webhook).
routes = [
    Route("/webhooks/twilio/sms", twilio_sms, methods=["GET", "POST"]),
    Route("/webhooks/twilio/status", twilio_status, methods=["GET", "POST"]),
    Route("/webhooks/meta", meta_verify, methods=["GET"]),
    Route("/webhooks/meta", meta_events, methods=["POST"]),
]
