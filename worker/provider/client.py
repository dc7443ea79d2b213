"""The production Twilio client: one per process, pointed at ``TWILIO_API_BASE_URL``, never retrying.

Why these choices:

- ``TWILIO_API_BASE_URL`` lets the same code talk to the local fake (worker/provider/fake/),
  to a recording proxy, or to Twilio. twilio-python builds absolute ``https://api.twilio.com``
  URLs, so the HTTP client rewrites that prefix; edge/region stay unset when the base URL is
  not Twilio's, otherwise the client would rewrite the host again
  (docs/compliance.md#twilio-messages-api).
- No automatic retries, not even on connection errors: a duplicate SMS is a harm, and only
  the caller (the outbound sender, with its attempt rows) can decide whether a retry is safe.
- One client per process, so the connection pool is reused (a new TLS handshake per send
  would cap throughput). The cache is keyed on the settings object and the process id: a
  forked Celery child never shares its parent's sockets, and tests that install new settings
  (or clear the settings cache after changing the environment) get a new client.

Errors callers see (nothing is wrapped):

- ``twilio.base.exceptions.TwilioRestException``: Twilio answered with an error;
  ``.status`` is the HTTP status, ``.code`` the Twilio code (21610, 21211, 20429 ...).
- ``requests.exceptions.ConnectTimeout`` / ``requests.exceptions.ConnectionError`` whose
  cause is a refused or failed connection: the request never reached Twilio, nothing was sent
  (``request_never_reached_twilio(exc)`` is True).
- ``requests.exceptions.ReadTimeout`` and other ``requests.exceptions.RequestException``:
  the request may have reached Twilio; the message may exist. Reconcile with
  ``find_messages`` before any retry.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import structlog
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from twilio.base import values
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from worker.settings import Settings, get_settings

__all__ = [
    "TWILIO_API_URL",
    "FoundMessage",
    "SentMessage",
    "find_messages",
    "make_client",
    "preload",
    "request_never_reached_twilio",
    "reset_client",
    "send_sms",
]

log = structlog.get_logger(__name__)

TWILIO_API_URL = "https://api.twilio.com"
# Enough for a prefork child (1 request at a time) and for threaded benchmarks.
_POOL_MAXSIZE = 64


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """``TwilioHttpClient`` that sends ``https://api.twilio.com/...`` to another base URL, without retries."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout, max_retries=None)
        self.base_url = base_url.rstrip("/")
        # max_retries=0: urllib3 gives up on the first connect/read error (requests' default,
        # stated here because TwilioHttpClient mounts its own adapter for https only).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_POOL_MAXSIZE, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def rewrite(self, url: str) -> str:
        if self.base_url != TWILIO_API_URL and url.startswith(TWILIO_API_URL + "/"):
            return self.base_url + url[len(TWILIO_API_URL) :]
        return url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, self.rewrite(url), *args, **kwargs)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


_lock = threading.Lock()
_cached: tuple[int, int, Settings, Any] | None = None  # (pid, id(settings), settings, Client)


def _build(settings: Settings) -> Any:
    http_client = BaseUrlHttpClient(settings.TWILIO_API_BASE_URL, settings.TWILIO_HTTP_TIMEOUT)
    client = Client(
        settings.secret("TWILIO_ACCOUNT_SID"),
        settings.secret("TWILIO_AUTH_TOKEN"),
        http_client=http_client,
    )
    if settings.TWILIO_API_BASE_URL != TWILIO_API_URL:
        # Client() reads TWILIO_EDGE / TWILIO_REGION from the environment; either would make
        # ClientBase rewrite the host of every URL and bypass the configured base URL.
        client.edge = None
        client.region = None
    log.info(
        "twilio_client_created",
        base_url=settings.TWILIO_API_BASE_URL,
        timeout=settings.TWILIO_HTTP_TIMEOUT,
        pid=os.getpid(),
    )
    return client


def make_client(settings: Settings | None = None) -> Client:
    """The process's Twilio client for these settings (default: ``get_settings()``), built once.

    Tests that change ``TWILIO_API_BASE_URL`` in the environment must make ``get_settings()``
    re-read it (``set_settings(None)`` or a new override); the ``fake_twilio`` fixture does this.
    """
    global _cached
    settings = settings or get_settings()
    pid = os.getpid()
    with _lock:
        if _cached is not None and _cached[0] == pid and _cached[2] is settings:
            return _cached[3]
        old = _cached
        client = _build(settings)
        _cached = (pid, id(settings), settings, client)
    if old is not None and old[0] == pid:
        old[3].http_client.close()
    return client


def preload() -> None:
    """Import now what a process's first send would import.

    twilio-python imports its REST modules (``twilio.rest.api`` down to the message list,
    ~90 modules) on the first ``client.messages``: ~0.15 s of CPU on a quiet core, more under
    load. The Celery main process calls this before the prefork pool forks (worker/app.py),
    so every child inherits them instead of paying it in its first send task, which is often
    an opt-out confirmation with a deadline. Builds a throwaway client: no socket is opened.
    """
    _ = Client("AC" + "0" * 32, "preload").messages


def reset_client() -> None:
    """Forget (and close) the cached client; the next ``make_client`` builds a new one."""
    global _cached
    with _lock:
        old, _cached = _cached, None
    if old is not None and old[0] == os.getpid():
        old[3].http_client.close()


def request_never_reached_twilio(exc: BaseException) -> bool:
    """True only when ``exc`` proves the HTTP request was not delivered (safe to retry the send).

    A connect timeout or a refused / unresolvable connection qualifies. A read timeout, a reset
    connection or anything else does not: Twilio may have created the message.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)  # MaxRetryError wraps the urllib3 error
        return isinstance(inner, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
    return False


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What Twilio answered to a create: the SID is the key for callbacks and reconciliation."""

    sid: str
    status: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    date_created: datetime | None
    num_segments: int | None
    error_code: int | None


@dataclass(frozen=True, slots=True)
class FoundMessage:
    """A message found by listing: enough to match it to an outbox row (by body and time)."""

    sid: str
    body: str
    status: str
    to: str
    from_: str | None
    date_created: datetime | None
    date_sent: datetime | None
    error_code: int | None


def _int_or_none(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def send_sms(
    client: Client,
    *,
    to: str,
    body: str,
    from_: str | None = None,
    messaging_service_sid: str | None = None,
    status_callback: str | None = None,
    validity_period: int | None = None,
) -> SentMessage:
    """Create one message. Raises as described in the module docstring; never retries."""
    if not from_ and not messaging_service_sid:
        raise ValueError("send_sms needs from_ or messaging_service_sid")
    # None values are dropped from the form by twilio-python (ClientBase.copy_non_none_values).
    msg = client.messages.create(
        to=to,
        body=body,
        from_=from_,
        messaging_service_sid=messaging_service_sid,
        status_callback=status_callback,
        validity_period=validity_period,
    )
    return SentMessage(
        sid=msg.sid,
        status=str(msg.status),
        to=msg.to,
        from_=msg.from_,
        messaging_service_sid=msg.messaging_service_sid,
        date_created=msg.date_created,
        num_segments=_int_or_none(msg.num_segments),
        error_code=_int_or_none(msg.error_code),
    )


def find_messages(
    client: Client,
    *,
    to: str,
    from_: str | None = None,
    date_sent_after: datetime | None = None,
    limit: int = 200,
) -> list[FoundMessage]:
    """Messages to ``to`` (optionally from ``from_``) created at or after ``date_sent_after``, newest first.

    Used to reconcile a send whose answer was lost. The time bound is applied to
    ``date_created`` here, not sent to Twilio as a ``DateSent`` filter: a message still queued
    at Twilio has no ``date_sent`` yet, and missing it would lead to a duplicate text.
    Twilio keeps whole seconds, so the bound is truncated to the second.
    """
    after = date_sent_after.astimezone(UTC).replace(microsecond=0) if date_sent_after else None
    found: list[FoundMessage] = []
    for msg in client.messages.stream(to=to, from_=from_ or values.unset, limit=limit):
        created: datetime | None = msg.date_created
        if after is not None and created is not None and created < after:
            continue
        found.append(
            FoundMessage(
                sid=msg.sid,
                body=msg.body or "",
                status=str(msg.status),
                to=msg.to,
                from_=msg.from_,
                date_created=created,
                date_sent=msg.date_sent,
                error_code=_int_or_none(msg.error_code),
            )
        )
    return found
