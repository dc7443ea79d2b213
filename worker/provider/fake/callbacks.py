"""Status callbacks as Twilio posts them: the form for a status change, signed with the auth token
over the public URL, optionally routed to a local address, posted now or after a create."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import structlog
from twilio.request_validator import RequestValidator

from worker.provider.fake.api import API_VERSION, MessageStore, StoredMessage, rfc2822
from worker.provider.fake.faults import ERROR_MESSAGES

log = structlog.get_logger(__package__)

# Statuses after which Twilio reports a final outcome with an error code.
_ERROR_STATUSES = frozenset({"failed", "undelivered"})
_FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})


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


def iter_statuses(callbacks: Iterable[RecordedCallback], sid: str) -> Iterator[str]:
    """The MessageStatus values posted for one message, in posting order (a test convenience)."""
    return (c.params["MessageStatus"] for c in callbacks if c.params.get("MessageSid") == sid)


class CallbackSender:
    """Posts (and records) the status callbacks of the store's messages. Thread-safe.

    ``open()``/``close()`` bound the background part (the executor of auto callbacks, the pooled
    HTTP client); ``stopping`` is the server's event, set when the fake stops.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        store: MessageStore,
        stopping: threading.Event,
        *,
        auto_callbacks: tuple[str, ...],
        callback_delay: float,
        callback_timeout: float,
    ) -> None:
        self.account_sid = account_sid
        self.store = store
        # Statuses posted to a create's StatusCallback, in order, e.g. ("sent", "delivered").
        self.auto_callbacks = auto_callbacks
        # Seconds before each auto callback; 0 still posts only after the 201 has been written.
        self.callback_delay = callback_delay
        self.callback_timeout = callback_timeout
        self._stopping = stopping
        self._validator = RequestValidator(auth_token)
        self._changed = threading.Condition()
        self._routes: list[tuple[str, str]] = []
        self._records: list[RecordedCallback] = []
        self._executor: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None

    def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-twilio-callback")
        self._http = httpx.Client(timeout=self.callback_timeout)

    def close(self) -> None:
        """Drop pending auto callbacks (after waiting for running ones) and the pooled client."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def records(self) -> list[RecordedCallback]:
        with self._changed:
            return list(self._records)

    def wait_for(self, count: int, timeout: float) -> list[RecordedCallback]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._records) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self._records)} of {count} status callbacks posted in {timeout}s")
            return list(self._records)

    def clear(self) -> None:
        """Forget routes and recorded callbacks."""
        with self._changed:
            self._routes.clear()
            self._records.clear()

    def route_callbacks(self, public_prefix: str, actual_prefix: str) -> None:
        """Deliver callbacks for URLs under ``public_prefix`` to ``actual_prefix`` instead, still
        signing the original URL: what a reverse proxy in front of the receiver does."""
        with self._changed:
            self._routes.append((public_prefix, actual_prefix))

    def _route(self, url: str) -> str:
        with self._changed:
            routes = list(self._routes)
        for public, actual in routes:
            if url.startswith(public):
                return actual + url[len(public) :]
        return url

    def callback_params(self, sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
        """The form Twilio posts for a status change (and updates the message's status)."""
        now = self.store.clock()

        def change(stored: StoredMessage) -> dict[str, str]:
            msg = stored.json
            msg["status"] = status
            msg["date_updated"] = rfc2822(now)
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

        return self.store.apply(sid, change)

    def post_status(
        self, sid: str, status: str, error_code: int | None = None, *, url: str | None = None
    ) -> RecordedCallback:
        """Post one status callback now (synchronously) to the message's StatusCallback (or ``url``)."""
        target = url or self.store.apply(sid, lambda stored: stored.status_callback)
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
            self._records.append(record)
            self._changed.notify_all()
        log.debug(
            "fake_twilio_callback_posted",
            message_sid=params["MessageSid"],
            status=params["MessageStatus"],
            response_status=status_code,
            error=error,
        )
        return record

    def _plan(self, stored: StoredMessage) -> list[str]:
        plan = list(self.auto_callbacks)
        if stored.delivery_error is not None:
            plan = [s for s in plan if s not in _FINAL_STATUSES] + ["undelivered"]
        return plan

    def _run(self, sid: str, url: str, plan: list[str]) -> None:
        for status in plan:
            if self.callback_delay and self._stopping.wait(self.callback_delay):
                return
            if self._stopping.is_set():
                return
            try:
                self._post(url, self.callback_params(sid, status))
            except Exception:
                log.exception("fake_twilio_callback_crashed", message_sid=sid, status=status)

    def schedule(self, stored: StoredMessage) -> Callable[[], None] | None:
        """What to call once the create's answer is written: it queues the message's auto callbacks.
        None when there is nothing to post (no StatusCallback, or no auto callbacks)."""
        url = stored.status_callback
        plan = self._plan(stored) if url else []
        if not url or not plan:
            return None
        sid = stored.json["sid"]

        def submit() -> None:
            executor = self._executor
            if executor is not None and not self._stopping.is_set():
                with contextlib.suppress(RuntimeError):  # executor shut down meanwhile
                    executor.submit(self._run, sid, url, plan)

        return submit
