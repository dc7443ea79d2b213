"""The Twilio Messages API the fake answers, kept free of HTTP plumbing: auth, create and its
validation, fetch, list (DateSent filters, paging), the /_fake/ admin endpoints, the stored messages."""

from __future__ import annotations

import hmac
import json
import re
import threading
import uuid
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from compliance.segments import count_segments
from worker.provider.fake.faults import FaultPlan, TwilioError

if TYPE_CHECKING:
    from worker.provider.fake.callbacks import CallbackSender

API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_T = TypeVar("_T")


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


@dataclass
class StoredMessage:
    json: dict[str, Any]
    form: dict[str, list[str]]
    created: datetime
    seq: int
    status_callback: str | None
    delivery_error: int | None = None


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float | None = None
    after: Callable[[], None] | None = None


def rfc2822(dt: datetime | None) -> str | None:
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class MessageStore:
    """The messages the fake created, in creation order, with the clock that dates them. Thread-safe."""

    def __init__(self, account_sid: str, clock: Callable[[], datetime]) -> None:
        self.account_sid = account_sid
        # Where message timestamps come from; tests back-date messages to exercise DateSent filters.
        self.clock = clock
        self._changed = threading.Condition()
        self._messages: dict[str, StoredMessage] = {}
        self._order: list[str] = []
        self._seq = 0

    def add(self, form: dict[str, list[str]], to: str, body: str, delivery_error: int | None) -> StoredMessage:
        """Store a message the create accepted, as Twilio's JSON says it."""
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
            "date_created": rfc2822(now),
            "date_sent": None if scheduled else rfc2822(now),
            "date_updated": rfc2822(now),
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
            stored = StoredMessage(msg, form, now, self._seq, _first(form, "StatusCallback"), delivery_error)
            self._messages[sid] = stored
            self._order.append(sid)
            self._changed.notify_all()
        return stored

    def apply(self, sid: str, change: Callable[[StoredMessage], _T]) -> _T:
        """``change(message)`` under the store's lock (to read or update it); KeyError if it was never created."""
        with self._changed:
            return change(self._messages[sid])

    def get(self, sid: str) -> dict[str, Any] | None:
        with self._changed:
            stored = self._messages.get(sid)
            return None if stored is None else dict(stored.json)

    def snapshot(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages (all, or those to ``to``) in creation order."""
        with self._changed:
            return self._snapshot(to)

    def _snapshot(self, to: str | None = None) -> list[dict[str, Any]]:
        messages = (self._messages[sid].json for sid in self._order)
        return [dict(m) for m in messages if to is None or m["to"] == to]

    def newest_first(self, keep: Callable[[StoredMessage], bool]) -> list[dict[str, Any]]:
        """The messages ``keep`` accepts, newest (by creation time) first."""
        with self._changed:
            ordered = sorted(self._messages.values(), key=lambda s: (s.created, s.seq), reverse=True)
            return [dict(s.json) for s in ordered if keep(s)]

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._order) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self._order)} of {count} messages created in {timeout}s")
            return self._snapshot()

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()
            self._order.clear()


class MessagesApi:
    """Answers one parsed request (Twilio API or /_fake/ admin) and records the API ones."""

    def __init__(
        self, account_sid: str, auth_token: str, store: MessageStore, faults: FaultPlan, callbacks: CallbackSender
    ) -> None:
        self.account_sid = account_sid
        self.store = store
        self.faults = faults
        self.callbacks = callbacks
        self._expected_auth = "Basic " + b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget requests, messages, fault rules, callback routes and callbacks."""
        with self._lock:
            self._requests.clear()
        self.store.clear()
        self.faults.clear()
        self.callbacks.clear()

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> Response:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path.startswith("/_fake/"):
            try:
                return self._admin(method, parts.path, query, raw)
            except (ValueError, KeyError, TypeError) as exc:
                return Response(400, {"error": f"{type(exc).__name__}: {exc}"})
        content_type = headers.get("Content-Type", "")
        form: dict[str, list[str]] = {}
        if raw and "application/x-www-form-urlencoded" in content_type:
            form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        try:
            response = self._api(method, parts.path, query, form, headers)
        except TwilioError as err:
            response = Response(err.http_status, err.body())
            if err.http_status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        record = RecordedRequest(method, parts.path, query, form, headers, datetime.now(UTC), response.status)
        with self._lock:
            self._requests.append(record)
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
    ) -> Response:
        match = _MESSAGES_PATH.match(path)
        if match is None:
            raise TwilioError(404, 20404)
        account_sid, message_sid = match.group(1), match.group(2)
        self._check_auth(headers, account_sid)
        if message_sid is None and method == "POST":
            return self._create(form)
        if message_sid is None and method == "GET":
            return Response(200, self._list(path, query))
        if message_sid is not None and method == "GET":
            msg = self.store.get(message_sid)
            if msg is None:
                raise TwilioError(404, 20404, f"The requested resource {path} was not found")
            return Response(200, msg)
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

    def _create(self, form: dict[str, list[str]]) -> Response:
        to, body = self._validate_create(form)
        rule = self.faults.take(to)
        if rule is not None and rule.delivery_error is None and not rule.after_accept:
            err = rule.refusal()
            return Response(err.http_status, err.body(), hang_seconds=rule.hang_seconds)

        stored = self.store.add(form, to, body, rule.delivery_error if rule else None)
        after = self.callbacks.schedule(stored)
        if after is not None and rule is not None and rule.hang_seconds:
            # Twilio's callbacks do not wait for our hung answer.
            after()
            after = None
        if rule is not None and rule.after_accept and rule.explicit_error:
            err = rule.error()
            return Response(err.http_status, err.body(), hang_seconds=rule.hang_seconds, after=after)
        return Response(201, dict(stored.json), hang_seconds=rule.hang_seconds if rule else None, after=after)

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

        def keep(s: StoredMessage) -> bool:
            return (
                (to is None or s.json["to"] == to)
                and (from_ is None or s.json["from"] == from_)
                and all(
                    s.json["date_sent"] is not None and _date_matches(s.created, op, bound)
                    for op, bound in date_filters
                )
            )

        matching = self.store.newest_first(keep)
        start = page * page_size
        chunk = matching[start : start + page_size]
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

    def _admin(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Response:
        args: dict[str, Any] = json.loads(raw) if raw else {}
        if not isinstance(args, dict):
            raise TypeError("JSON object expected")
        if method == "GET" and path == "/_fake/messages":
            return Response(200, {"messages": self.store.snapshot(_first(query, "to") or None)})
        if method == "GET" and path == "/_fake/requests":
            return Response(200, {"requests": [_jsonable(asdict(r)) for r in self.requests]})
        if method == "GET" and path == "/_fake/callbacks":
            return Response(200, {"callbacks": [_jsonable(asdict(c)) for c in self.callbacks.records]})
        if method == "POST" and path == "/_fake/fail_number":
            self.faults.fail_number(args.pop("to"), **args)
            return Response(200, {"ok": True})
        if method == "POST" and path == "/_fake/fail_next":
            self.faults.fail_next(**args)
            return Response(200, {"ok": True})
        if method == "POST" and path == "/_fake/status":
            record = self.callbacks.post_status(
                args["sid"], args["status"], args.get("error_code"), url=args.get("url")
            )
            return Response(200, {"callback": _jsonable(asdict(record))})
        if method == "POST" and path == "/_fake/route_callbacks":
            self.callbacks.route_callbacks(args["public_prefix"], args["actual_prefix"])
            return Response(200, {"ok": True})
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return Response(200, {"ok": True})
        return Response(404, {"error": f"no admin endpoint {method} {path}"})
