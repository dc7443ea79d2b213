"""HTTP plumbing of the fake Twilio (threading server, thin keep-alive handler, connection tracking,
start/stop) and FakeTwilio, the facade that wires the message store, API, faults and callbacks."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, TypeVar, cast, overload
from urllib.parse import urlsplit

import structlog

from worker.provider.fake.api import MessagesApi, MessageStore, RecordedRequest, Response
from worker.provider.fake.callbacks import CallbackSender, RecordedCallback
from worker.provider.fake.faults import FaultPlan, TwilioError

log = structlog.get_logger(__package__)

_T = TypeVar("_T")


class _Server(ThreadingHTTPServer):
    """Serves one MessagesApi; tracks open connections so that stop() can end kept-alive ones."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], api: MessagesApi, stopping: threading.Event) -> None:
        self.api = api
        self.stopping = stopping
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            # Handler threads of kept-alive connections block in recv; shutting the socket ends them.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Thin: parse the request, let the MessagesApi decide, write the answer (keep-alive HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; with Nagle on, delayed ACKs add ~40 ms per request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

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
            response = self.server.api.handle(method, self.path, dict(self.headers.items()), raw)
        except Exception:
            # A bug in the fake must look like a Twilio 500 to the caller, not a dropped connection
            # (which our sender would classify differently), and must be visible in the log.
            log.exception("fake_twilio_handler_crashed", method=method, path=urlsplit(self.path).path)
            response = Response(500, TwilioError(500, 20500).body())
        if response.hang_seconds:
            # Event.wait, not sleep: stop() releases hung handlers at once.
            self.server.stopping.wait(response.hang_seconds)
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


class _PartAttribute(Generic[_T]):
    """A FakeTwilio attribute kept by one of its parts: reading or setting it on the facade reaches
    that part, so that e.g. ``fake.clock = ...`` on a running fake dates the next message."""

    def __init__(self, part: str) -> None:
        self._part = part
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _PartAttribute[_T]: ...
    @overload
    def __get__(self, obj: FakeTwilio, owner: type[Any]) -> _T: ...
    def __get__(self, obj: FakeTwilio | None, owner: type[Any]) -> _T | _PartAttribute[_T]:
        if obj is None:
            return self
        return cast("_T", getattr(getattr(obj, self._part), self._name))

    def __set__(self, obj: FakeTwilio, value: _T) -> None:
        setattr(getattr(obj, self._part), self._name, value)


class FakeTwilio:
    """A Twilio Messages API on 127.0.0.1, recording everything and failing on request.

    Use as a context manager or ``start()``/``stop()``. All public methods are thread-safe.
    """

    # Where message timestamps come from; tests back-date messages to exercise DateSent filters.
    clock: _PartAttribute[Callable[[], datetime]] = _PartAttribute("_store")
    # Statuses posted to a create's StatusCallback, in order, e.g. ("sent", "delivered").
    auto_callbacks: _PartAttribute[tuple[str, ...]] = _PartAttribute("_callback_sender")
    # Seconds before each auto callback; 0 still posts only after the 201 has been written.
    callback_delay: _PartAttribute[float] = _PartAttribute("_callback_sender")
    callback_timeout: _PartAttribute[float] = _PartAttribute("_callback_sender")

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
        self._stopping = threading.Event()
        self._store = MessageStore(account_sid, clock or (lambda: datetime.now(UTC)))
        self._faults = FaultPlan()
        self._callback_sender = CallbackSender(
            account_sid,
            auth_token,
            self._store,
            self._stopping,
            auto_callbacks=auto_callbacks,
            callback_delay=callback_delay,
            callback_timeout=callback_timeout,
        )
        self._api = MessagesApi(account_sid, auth_token, self._store, self._faults, self._callback_sender)
        # Fault injection is the FaultPlan's own (same signatures and docs): fail_number(to, ...), fail_next(n, ...).
        self.fail_number = self._faults.fail_number
        self.fail_next = self._faults.fail_next
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        """Bind and serve in a background daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), self._api, self._stopping)
        self.port = int(server.server_address[1])
        self._server = server
        self._callback_sender.open()
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
        server.close_connections()
        self._callback_sender.close()
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

    # -- recording ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._api.requests

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Created messages (Twilio JSON, current status), in creation order."""
        return self._store.snapshot()

    @property
    def callbacks(self) -> list[RecordedCallback]:
        return self._callback_sender.records

    def message(self, sid: str) -> dict[str, Any]:
        """One message's current JSON; KeyError if the fake never created it."""
        return self._store.apply(sid, lambda stored: dict(stored.json))

    def create_params(self, sid: str) -> dict[str, list[str]]:
        """The form fields the create carried (ValidityPeriod, StatusCallback, MediaUrl ...)."""
        return self._store.apply(sid, lambda stored: {k: list(v) for k, v in stored.form.items()})

    def sent_to(self, to: str) -> list[dict[str, Any]]:
        """Messages created for this number, in creation order."""
        return self._store.snapshot(to)

    def reset(self) -> None:
        """Forget requests, messages, callbacks, fault rules and routes (auto_callbacks stay)."""
        self._api.reset()

    def wait_for_callbacks(self, count: int, timeout: float = 10.0) -> list[RecordedCallback]:
        """Block until at least ``count`` callbacks were posted; TimeoutError otherwise."""
        return self._callback_sender.wait_for(count, timeout)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages were created; TimeoutError otherwise."""
        return self._store.wait_for(count, timeout)

    # -- status callbacks ---------------------------------------------------------------------

    def route_callbacks(self, public_prefix: str, actual_prefix: str) -> None:
        """Deliver callbacks for URLs under ``public_prefix`` to ``actual_prefix`` instead, still
        signing the original URL: what a reverse proxy in front of the receiver does."""
        self._callback_sender.route_callbacks(public_prefix, actual_prefix)

    def callback_params(self, sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
        """The form Twilio posts for a status change (and updates the message's status)."""
        return self._callback_sender.callback_params(sid, status, error_code)

    def post_status(
        self, sid: str, status: str, error_code: int | None = None, *, url: str | None = None
    ) -> RecordedCallback:
        """Post one status callback now (synchronously) to the message's StatusCallback (or ``url``)."""
        return self._callback_sender.post_status(sid, status, error_code, url=url)
