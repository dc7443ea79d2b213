"""A local fake of the Twilio Messages API, for the tests and for ``msgworker demo``.

Why a real HTTP server rather than a mock: the official ``twilio`` client is part of what we
test (its URL building, form encoding, error parsing, paging), so it must talk HTTP to
something that answers with Twilio's JSON shapes. The client reaches this server through
``TWILIO_API_BASE_URL`` (see worker/twilio_client.py).

What it implements (COMPLIANCE.md §2 for the shapes and codes):

- ``POST /2010-04-01/Accounts/{sid}/Messages.json``: create (201, Twilio's message JSON).
- ``GET  /2010-04-01/Accounts/{sid}/Messages/{MessageSid}.json``: fetch one.
- ``GET  /2010-04-01/Accounts/{sid}/Messages.json``: list, newest first, filtered by ``To``,
  ``From``, ``DateSent``, ``DateSent<`` (on or before) and ``DateSent>`` (on or after), with
  Twilio's page shape and working ``next_page_uri`` paging.
- HTTP Basic auth (401 / code 20003), a foreign account sid in the path (404 / 20404).
- Fault injection per number or for the next N creates: synchronous Twilio errors (21610,
  21211, 21614 ...), HTTP 429 / 500, a hang (so the client's timeout fires), "accepted then
  hung" (the message exists at Twilio but the caller never heard: reconciliation), and
  delivery errors (30006 ...) reported later by the status callback as ``undelivered``.
- Status callbacks: form-encoded POSTs signed like Twilio's (``X-Twilio-Signature`` over the
  StatusCallback URL exactly as given), optionally re-routed to a local address while still
  signed for the public URL, which is what a reverse proxy in front of the receiver does.
- Out-of-process control under ``/_fake/`` (JSON, no auth: bind it to localhost only).

Behaviours that differ from Twilio, on purpose (documented in /work/notes/fake_twilio.md):
the fake "sends" instantly, so ``date_sent`` is set at creation (except scheduled messages);
statuses only move when a status callback is posted (auto or on demand).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import structlog
from twilio.request_validator import RequestValidator

from compliance.segments import count_segments

__all__ = [
    "ERROR_MESSAGES",
    "FakeTwilio",
    "RecordedCallback",
    "RecordedRequest",
    "TwilioError",
    "iter_statuses",
]

log = structlog.get_logger(__name__)

API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Statuses after which Twilio reports a final outcome with an error code.
_ERROR_STATUSES = frozenset({"failed", "undelivered"})
_FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})

# Texts as Twilio words them where known (COMPLIANCE.md §2); the exact wording of the others
# is not contractual, the code is what callers act on.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination.",
    21608: "The number is unverified.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number is not currently reachable using the 'From' phone number via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21635: "The 'To' number cannot receive SMS (landline).",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
_DEFAULT_CODE_FOR_STATUS = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}

class TwilioError(Exception):
    """Raised inside the fake to answer with Twilio's JSON error body."""

    def __init__(self, http_status: int, code: int | None, message: str | None = None) -> None:
        self.http_status = http_status
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code or 0, "Error")
        super().__init__(f"{http_status} {code} {self.message}")

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}" if self.code else None,
            "status": self.http_status,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One Twilio API request as the fake received it (admin /_fake/ requests are not recorded)."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    at: datetime
    status: int

    def param(self, name: str) -> str | None:
        """First value of a form (or else query) parameter."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class RecordedCallback:
    """One status callback the fake posted: ``url`` is what was signed, ``delivered_to`` where it went."""

    url: str
    delivered_to: str
    params: dict[str, str]
    headers: dict[str, str]
    status_code: int | None
    error: str | None
    at: datetime


@dataclass
class _FailRule:
    to: str | None  # None: any number (fail_next)
    error_code: int | None
    http_status: int
    hang_seconds: float | None
    times: int | None
    after_accept: bool
    delivery_error: int | None

    @property
    def explicit_error(self) -> bool:
        return self.error_code is not None or self.http_status != 400


@dataclass
class _Stored:
    json: dict[str, Any]
    form: dict[str, list[str]]
    created: datetime
    seq: int
    status_callback: str | None
    delivery_error: int | None = None


@dataclass
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float | None = None
    after: Callable[[], None] | None = None


def _rfc2822(dt: datetime | None) -> str | None:
    return format_datetime(dt) if dt is not None else None


def _first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _parse_date_filter(value: str) -> date | datetime:
    """``YYYY-MM-DD`` (day granularity) or ``YYYY-MM-DDTHH:MM:SSZ`` as twilio-python serialises."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise TwilioError(400, 20001, f"Invalid DateSent filter {value!r}") from None


def _date_matches(sent: datetime, op: str, bound: date | datetime) -> bool:
    """Twilio documents ``DateSent`` as a day and the inequalities as inclusive ("on or before /
    after"); twilio-python 9 always sends ``YYYY-MM-DDTHH:MM:SSZ`` (midnight for a ``date``), so
    equality compares days and the inequalities compare to the second."""
    if op == "=":
        return sent.date() == (bound.date() if isinstance(bound, datetime) else bound)
    left = sent.replace(microsecond=0)
    right = bound if isinstance(bound, datetime) else datetime.combine(bound, datetime.min.time(), UTC)
    return left <= right if op == "<" else left >= right


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: FakeTwilio


class _Handler(BaseHTTPRequestHandler):
    """Thin: parse the request, let FakeTwilio decide, write the answer (keep-alive HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; with Nagle on, delayed ACKs add ~40 ms per request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib writes every request to stderr; the request log is .requests instead.
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            response = self.server.fake._handle(method, self.path, dict(self.headers.items()), raw)
        except Exception:
            # A bug in the fake must look like a Twilio 500 to the caller, not a dropped connection
            # (which our sender would classify differently), and must be visible in the log.
            log.exception("fake_twilio_handler_crashed", method=method, path=urlsplit(self.path).path)
            response = _Response(500, TwilioError(500, 20500).body())
        if response.hang_seconds:
            # Event.wait, not sleep: stop() releases hung handlers at once.
            self.server.fake._stopping.wait(response.hang_seconds)
        payload = json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout fired during a hang): that is the point of a hang.
            self.close_connection = True
        if response.after is not None:
            response.after()


class FakeTwilio:
    """A Twilio Messages API on 127.0.0.1, recording everything and failing on request.

    Use as a context manager or ``start()``/``stop()``. All public methods are thread-safe.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auto_callbacks: tuple[str, ...] = (),
        callback_delay: float = 0.0,
        callback_timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        # Statuses posted to a create's StatusCallback, in order, e.g. ("sent", "delivered").
        self.auto_callbacks = auto_callbacks
        # Seconds before each auto callback; 0 still posts only after the 201 has been written.
        self.callback_delay = callback_delay
        self.callback_timeout = callback_timeout
        # Where message timestamps come from; tests back-date messages to exercise DateSent filters.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._validator = RequestValidator(auth_token)
        self._expected_auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._messages: dict[str, _Stored] = {}
        self._order: list[str] = []
        self._rules: list[_FailRule] = []
        self._routes: list[tuple[str, str]] = []
        self._callbacks: list[RecordedCallback] = []
        self._connections: set[socket.socket] = set()
        self._seq = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        """Bind and serve in a background daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self.port = int(server.server_address[1])
        self._server = server
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-twilio-callback")
        self._http = httpx.Client(timeout=self.callback_timeout)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-twilio", daemon=True
        )
        self._thread.start()
        log.info("fake_twilio_started", base_url=self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, release hung handlers, close kept-alive connections and pending callbacks."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            # Handler threads of kept-alive connections block in recv; shutting the socket ends them.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("fake_twilio_stopped", port=self.port)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (``msgworker fake-twilio``)."""
        self.start()
        try:
            while not self._stopping.wait(1.0):
                pass
        finally:
            self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- recording ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Created messages (Twilio JSON, current status), in creation order."""
        with self._lock:
            return [dict(self._messages[sid].json) for sid in self._order]

    @property
    def callbacks(self) -> list[RecordedCallback]:
        with self._lock:
            return list(self._callbacks)

    def message(self, sid: str) -> dict[str, Any]:
        """One message's current JSON; KeyError if the fake never created it."""
        with self._lock:
            return dict(self._messages[sid].json)

    def create_params(self, sid: str) -> dict[str, list[str]]:
        """The form fields the create carried (ValidityPeriod, StatusCallback, MediaUrl ...)."""
        with self._lock:
            return {k: list(v) for k, v in self._messages[sid].form.items()}

    def sent_to(self, to: str) -> list[dict[str, Any]]:
        """Messages created for this number, in creation order."""
        with self._lock:
            return [dict(self._messages[sid].json) for sid in self._order if self._messages[sid].json["to"] == to]

    def reset(self) -> None:
        """Forget requests, messages, callbacks, fault rules and routes (auto_callbacks stay)."""
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._order.clear()
            self._rules.clear()
            self._routes.clear()
            self._callbacks.clear()

    def wait_for_callbacks(self, count: int, timeout: float = 10.0) -> list[RecordedCallback]:
        """Block until at least ``count`` callbacks were posted; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._callbacks) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self._callbacks)} of {count} status callbacks posted in {timeout}s")
            return list(self._callbacks)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages were created; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._order) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self._order)} of {count} messages created in {timeout}s")
            return [dict(self._messages[sid].json) for sid in self._order]

    # -- fault injection ----------------------------------------------------------------------

    def fail_number(
        self,
        to: str,
        *,
        error_code: int | None = None,
        http_status: int = 400,
        hang_seconds: float | None = None,
        times: int | None = None,
        after_accept: bool = False,
        delivery_error: int | None = None,
    ) -> None:
        """Make creates to ``to`` fail (``times`` times, or always with None).

        - ``error_code`` (HTTP ``http_status``, 400 by default): a synchronous Twilio error; nothing created.
        - ``http_status`` 429 / 500 / 503 alone: codes 20429 / 20500 / 20503.
        - ``hang_seconds``: wait that long before answering, so the caller's timeout fires. Without
          ``after_accept`` nothing is created and the late answer is the given error (503/20503 if none).
        - ``after_accept=True`` (with ``hang_seconds`` and/or an error): the message IS created first
          (Twilio accepted it), then the answer hangs and/or is the error: "sent, but we never heard".
          Its status callbacks (if any) are posted without waiting for the hung answer.
        - ``delivery_error`` (30003, 30006 ...): accepted with 201, then the status callback says
          ``undelivered`` with that ErrorCode.
        """
        self._add_rule(to, error_code, http_status, hang_seconds, times, after_accept, delivery_error)

    def fail_next(
        self,
        n: int = 1,
        *,
        error_code: int | None = None,
        http_status: int = 400,
        hang_seconds: float | None = None,
        after_accept: bool = False,
        delivery_error: int | None = None,
    ) -> None:
        """The next ``n`` creates, whatever the number, fail as in ``fail_number``."""
        self._add_rule(None, error_code, http_status, hang_seconds, n, after_accept, delivery_error)

    def _add_rule(
        self,
        to: str | None,
        error_code: int | None,
        http_status: int,
        hang_seconds: float | None,
        times: int | None,
        after_accept: bool,
        delivery_error: int | None,
    ) -> None:
        rule = _FailRule(to, error_code, http_status, hang_seconds, times, after_accept, delivery_error)
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for always)")
        if delivery_error is not None and (rule.explicit_error or hang_seconds or after_accept):
            raise ValueError("delivery_error is an asynchronous failure; it cannot combine with sync errors")
        if not (rule.explicit_error or hang_seconds or delivery_error is not None):
            raise ValueError("say how to fail: error_code, http_status, hang_seconds or delivery_error")
        if http_status < 400:
            raise ValueError("http_status of an error must be >= 400")
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, to: str) -> _FailRule | None:
        """The rule that applies to this create, consuming one of its ``times`` (caller holds the lock)."""
        candidates = [r for r in self._rules if r.to is None] + [r for r in self._rules if r.to == to]
        if not candidates:
            return None
        rule = candidates[0]
        if rule.times is not None:
            rule.times -= 1
            if rule.times == 0:
                self._rules.remove(rule)
        return rule

    # -- status callbacks ---------------------------------------------------------------------

    def route_callbacks(self, public_prefix: str, actual_prefix: str) -> None:
        """Deliver callbacks for URLs under ``public_prefix`` to ``actual_prefix`` instead, still
        signing the original URL: what a reverse proxy in front of the receiver does."""
        with self._lock:
            self._routes.append((public_prefix, actual_prefix))

    def _route(self, url: str) -> str:
        with self._lock:
            routes = list(self._routes)
        for public, actual in routes:
            if url.startswith(public):
                return actual + url[len(public) :]
        return url

    def callback_params(self, sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
        """The form Twilio posts for a status change (and updates the message's status)."""
        now = self.clock()
        with self._lock:
            stored = self._messages[sid]
            msg = stored.json
            msg["status"] = status
            msg["date_updated"] = _rfc2822(now)
            if status in _ERROR_STATUSES:
                code = error_code if error_code is not None else stored.delivery_error or 30008
                msg["error_code"] = code
                msg["error_message"] = ERROR_MESSAGES.get(code)
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "To": msg["to"],
            }
            if msg["from"]:
                params["From"] = msg["from"]
            if msg["messaging_service_sid"]:
                params["MessagingServiceSid"] = msg["messaging_service_sid"]
            if status in _ERROR_STATUSES:
                params["ErrorCode"] = str(msg["error_code"])
            if status in {"delivered", "undelivered"}:
                params["RawDlrDoneDate"] = now.strftime("%y%m%d%H%M")
        return params

    def post_status(
        self, sid: str, status: str, error_code: int | None = None, *, url: str | None = None
    ) -> RecordedCallback:
        """Post one status callback now (synchronously) to the message's StatusCallback (or ``url``)."""
        with self._lock:
            target = url or self._messages[sid].status_callback
        if not target:
            raise ValueError(f"message {sid} has no StatusCallback; pass url=")
        return self._post(target, self.callback_params(sid, status, error_code))

    def _post(self, url: str, params: dict[str, str]) -> RecordedCallback:
        headers = {
            "X-Twilio-Signature": self._validator.compute_signature(url, params),
            "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
        }
        target = self._route(url)
        status_code: int | None = None
        error: str | None = None
        client = self._http or httpx.Client(timeout=self.callback_timeout)
        try:
            response = client.post(target, content=urlencode(params), headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if client is not self._http:
                client.close()
        record = RecordedCallback(url, target, params, headers, status_code, error, datetime.now(UTC))
        with self._changed:
            self._callbacks.append(record)
            self._changed.notify_all()
        log.debug(
            "fake_twilio_callback_posted",
            message_sid=params["MessageSid"],
            status=params["MessageStatus"],
            response_status=status_code,
            error=error,
        )
        return record

    def _callback_plan(self, stored: _Stored) -> list[str]:
        plan = list(self.auto_callbacks)
        if stored.delivery_error is not None:
            plan = [s for s in plan if s not in _FINAL_STATUSES] + ["undelivered"]
        return plan

    def _run_callbacks(self, sid: str, url: str, plan: list[str]) -> None:
        for status in plan:
            if self.callback_delay and self._stopping.wait(self.callback_delay):
                return
            if self._stopping.is_set():
                return
            try:
                self._post(url, self.callback_params(sid, status))
            except Exception:
                log.exception("fake_twilio_callback_crashed", message_sid=sid, status=status)

    def _schedule_callbacks(self, sid: str, url: str, plan: list[str]) -> Callable[[], None] | None:
        if not plan:
            return None

        def submit() -> None:
            executor = self._executor
            if executor is not None and not self._stopping.is_set():
                with contextlib.suppress(RuntimeError):  # executor shut down meanwhile
                    executor.submit(self._run_callbacks, sid, url, plan)

        return submit

    # -- request handling ----------------------------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> _Response:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path.startswith("/_fake/"):
            try:
                return self._admin(method, parts.path, query, raw)
            except (ValueError, KeyError, TypeError) as exc:
                return _Response(400, {"error": f"{type(exc).__name__}: {exc}"})
        content_type = headers.get("Content-Type", "")
        form: dict[str, list[str]] = {}
        if raw and "application/x-www-form-urlencoded" in content_type:
            form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        try:
            response = self._api(method, parts.path, query, form, headers)
        except TwilioError as err:
            response = _Response(err.http_status, err.body())
            if err.http_status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        record = RecordedRequest(method, parts.path, query, form, headers, datetime.now(UTC), response.status)
        with self._changed:
            self._requests.append(record)
            self._changed.notify_all()
        return response

    def _check_auth(self, headers: Mapping[str, str], account_sid: str) -> None:
        given = headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), self._expected_auth.encode()):
            raise TwilioError(401, 20003)
        if account_sid != self.account_sid:
            raise TwilioError(404, 20404)

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        form: dict[str, list[str]],
        headers: Mapping[str, str],
    ) -> _Response:
        match = _MESSAGES_PATH.match(path)
        if match is None:
            raise TwilioError(404, 20404)
        account_sid, message_sid = match.group(1), match.group(2)
        self._check_auth(headers, account_sid)
        if message_sid is None and method == "POST":
            return self._create(form)
        if message_sid is None and method == "GET":
            return _Response(200, self._list(path, query))
        if message_sid is not None and method == "GET":
            with self._lock:
                stored = self._messages.get(message_sid)
                if stored is None:
                    raise TwilioError(404, 20404, f"The requested resource {path} was not found")
                return _Response(200, dict(stored.json))
        raise TwilioError(405, 20004, "Method not allowed")

    def _validate_create(self, form: Mapping[str, list[str]]) -> tuple[str, str]:
        to = _first(form, "To")
        if not to:
            raise TwilioError(400, 21604)
        body = _first(form, "Body") or ""
        if not body and not form.get("MediaUrl") and not _first(form, "ContentSid"):
            raise TwilioError(400, 21602)
        if not _first(form, "From") and not _first(form, "MessagingServiceSid"):
            raise TwilioError(400, 21603)
        if ":" not in to and not _E164.match(to):  # channel addresses (whatsapp:+1...) pass
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if len(body) > 1600:
            raise TwilioError(400, 21617)
        return to, body

    def _create(self, form: dict[str, list[str]]) -> _Response:
        to, body = self._validate_create(form)
        with self._lock:
            rule = self._take_rule(to)
        if rule is not None and rule.delivery_error is None and not rule.after_accept:
            if rule.hang_seconds:
                err = TwilioError(rule.http_status, rule.error_code) if rule.explicit_error else TwilioError(503, 20503)
            else:
                err = TwilioError(rule.http_status, rule.error_code or _DEFAULT_CODE_FOR_STATUS.get(rule.http_status))
            return _Response(err.http_status, err.body(), hang_seconds=rule.hang_seconds)

        stored = self._store(form, to, body, rule.delivery_error if rule else None)
        callback_url = stored.status_callback
        after = (
            self._schedule_callbacks(stored.json["sid"], callback_url, self._callback_plan(stored))
            if (callback_url)
            else None
        )
        if after is not None and rule is not None and rule.hang_seconds:
            # Twilio's callbacks do not wait for our hung answer.
            after()
            after = None
        if rule is not None and rule.after_accept and rule.explicit_error:
            err = TwilioError(rule.http_status, rule.error_code or _DEFAULT_CODE_FOR_STATUS.get(rule.http_status))
            return _Response(err.http_status, err.body(), hang_seconds=rule.hang_seconds, after=after)
        return _Response(201, dict(stored.json), hang_seconds=rule.hang_seconds if rule else None, after=after)

    def _store(self, form: dict[str, list[str]], to: str, body: str, delivery_error: int | None) -> _Stored:
        now = self.clock().astimezone(UTC)
        sid = "SM" + uuid.uuid4().hex
        service_sid = _first(form, "MessagingServiceSid")
        scheduled = _first(form, "ScheduleType") == "fixed"
        status = "scheduled" if scheduled else "accepted" if service_sid else "queued"
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        msg: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None if scheduled else _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": _first(form, "From"),
            "messaging_service_sid": service_sid,
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": str(count_segments(body).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json",
                "feedback": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Feedback.json",
            },
            "to": to,
            "uri": uri,
        }
        with self._changed:
            self._seq += 1
            stored = _Stored(msg, form, now, self._seq, _first(form, "StatusCallback"), delivery_error)
            self._messages[sid] = stored
            self._order.append(sid)
            self._changed.notify_all()
        return stored

    def _list(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        to, from_ = _first(query, "To"), _first(query, "From")
        date_filters = [
            (op, _parse_date_filter(value))
            for op, name in (("=", "DateSent"), ("<", "DateSent<"), (">", "DateSent>"))
            if (value := _first(query, name))
        ]
        try:
            page_size = min(max(int(_first(query, "PageSize") or 50), 1), 1000)
            page = max(int(_first(query, "Page") or 0), 0)
        except ValueError:
            raise TwilioError(400, 20001, "Invalid paging parameter") from None
        with self._lock:
            matching = [
                s.json
                for s in sorted(self._messages.values(), key=lambda s: (s.created, s.seq), reverse=True)
                if (to is None or s.json["to"] == to)
                and (from_ is None or s.json["from"] == from_)
                and all(
                    s.json["date_sent"] is not None and _date_matches(s.created, op, bound)
                    for op, bound in date_filters
                )
            ]
            start = page * page_size
            chunk = [dict(m) for m in matching[start : start + page_size]]
        filters = [(k, v[0]) for k, v in query.items() if k in {"To", "From", "DateSent", "DateSent<", "DateSent>"}]

        def page_uri(n: int) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(n))]
            if n:
                params.append(("PageToken", f"PA{n * page_size}"))
            return f"{path}?{urlencode(params)}"

        has_next = start + page_size < len(matching)
        return {
            "messages": chunk,
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }

    # -- out-of-process control (/_fake/) -------------------------------------------------------

    def _admin(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> _Response:
        args: dict[str, Any] = json.loads(raw) if raw else {}
        if not isinstance(args, dict):
            raise TypeError("JSON object expected")
        if method == "GET" and path == "/_fake/messages":
            to = _first(query, "to")
            return _Response(200, {"messages": self.sent_to(to) if to else self.messages})
        if method == "GET" and path == "/_fake/requests":
            return _Response(200, {"requests": [_jsonable(asdict(r)) for r in self.requests]})
        if method == "GET" and path == "/_fake/callbacks":
            return _Response(200, {"callbacks": [_jsonable(asdict(c)) for c in self.callbacks]})
        if method == "POST" and path == "/_fake/fail_number":
            self.fail_number(args.pop("to"), **args)
            return _Response(200, {"ok": True})
        if method == "POST" and path == "/_fake/fail_next":
            self.fail_next(**args)
            return _Response(200, {"ok": True})
        if method == "POST" and path == "/_fake/status":
            record = self.post_status(args["sid"], args["status"], args.get("error_code"), url=args.get("url"))
            return _Response(200, {"callback": _jsonable(asdict(record))})
        if method == "POST" and path == "/_fake/route_callbacks":
            self.route_callbacks(args["public_prefix"], args["actual_prefix"])
            return _Response(200, {"ok": True})
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return _Response(200, {"ok": True})
        return _Response(404, {"error": f"no admin endpoint {method} {path}"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def iter_statuses(callbacks: Iterable[RecordedCallback], sid: str) -> Iterator[str]:
    """The MessageStatus values posted for one message, in posting order (a test convenience)."""
    return (c.params["MessageStatus"] for c in callbacks if c.params.get("MessageSid") == sid)
