"""Error injection for the fake Twilio: the fail rules a test arms (per number, or for the next
creates) and TwilioError, the exception that becomes Twilio's JSON error body."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

# Texts as Twilio words them where known (docs/compliance.md#twilio-error-codes); the exact
# wording of the others is not contractual, the code is what callers act on.
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


@dataclass
class FailRule:
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

    def error(self) -> TwilioError:
        """The error answered, its code defaulted from the HTTP status (429 -> 20429 ...)."""
        return TwilioError(self.http_status, self.error_code or _DEFAULT_CODE_FOR_STATUS.get(self.http_status))

    def refusal(self) -> TwilioError:
        """The error for a create this rule refuses (nothing stored); a bare hang answers 503/20503 late."""
        if not self.hang_seconds:
            return self.error()
        return TwilioError(self.http_status, self.error_code) if self.explicit_error else TwilioError(503, 20503)


class FaultPlan:
    """The armed fail rules; each create takes the one that applies to it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FailRule] = []

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
        rule = FailRule(to, error_code, http_status, hang_seconds, times, after_accept, delivery_error)
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

    def take(self, to: str) -> FailRule | None:
        """The rule that applies to a create to ``to`` (fail_next rules first), consuming one of its ``times``."""
        with self._lock:
            candidates = [r for r in self._rules if r.to is None] + [r for r in self._rules if r.to == to]
            if not candidates:
                return None
            rule = candidates[0]
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self._rules.remove(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
