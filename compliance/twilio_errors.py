"""Twilio error codes -> what the sender does about them: a pure table, unit-tested on its own.

Categories (the action is the contract; see worker/outbound/send.py):

- ``OPT_OUT`` (21610): the recipient replied STOP at the carrier/Twilio layer. Record a carrier
  opt-out in the consent ledger, whichever way the code arrives: as the synchronous answer to a
  create (the row is blocked) or as the ``ErrorCode`` of a ``failed``/``undelivered`` status
  callback (the row follows the callback). ``is_opt_out`` and ``callback_reports_opt_out`` are
  the one rule both paths ask; the codes are the table's OPT_OUT rows, nowhere else.
- ``INVALID_RECIPIENT``: the number cannot take texts (invalid, landline, not mobile). Mark the
  row failed and the *number* undeliverable, so the gate stops later sends to it.
- ``UNDELIVERABLE_NUMBER`` (async, status callback): as above, reported after acceptance.
- ``UNDELIVERED_TEMPORARY`` (async): this message did not arrive; the number is fine.
- ``PERMANENT``: this request can never succeed as is (sender not capable, geo permission,
  body too long, auth). Mark failed with the code; do not retry; the number is not blamed.
- ``QUEUE_FULL`` (21611): the sender's queue at Twilio is full; retry later, with a long backoff.
- ``RETRYABLE``: Twilio answered with an error that means "not created" (429, 500/502/503);
  retry with backoff.
- ``OUTCOME_UNKNOWN``: the answer does not say whether the message was created (504
  gateway timeout): reconcile by looking the message up, never resend blindly.

Codes, meanings and each code's source: docs/compliance.md#twilio-error-codes. Rows it marks
**[unverified]** carry ``verified=False``; an unknown 4xx code is PERMANENT (never retried: a
duplicate text is worse than a missing one), only 500/502/503 are RETRYABLE
and any other 5xx (504 above all) is OUTCOME_UNKNOWN.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "ERRORS",
    "OPT_OUT_CODES",
    "Category",
    "ErrorInfo",
    "callback_reports_opt_out",
    "classify",
    "classify_delivery_error",
    "is_opt_out",
]


class Category(enum.StrEnum):
    OPT_OUT = "opt_out"
    INVALID_RECIPIENT = "invalid_recipient"
    UNDELIVERABLE_NUMBER = "undeliverable_number"
    UNDELIVERED_TEMPORARY = "undelivered_temporary"
    PERMANENT = "permanent"
    QUEUE_FULL = "queue_full"
    RETRYABLE = "retryable"
    OUTCOME_UNKNOWN = "outcome_unknown"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: int | None
    category: Category
    # The number itself cannot take texts: record it in compliance.undeliverable_numbers.
    marks_number: bool
    meaning: str
    verified: bool = True


def _e(code: int, category: Category, meaning: str, *, marks: bool = False, verified: bool = True) -> ErrorInfo:
    return ErrorInfo(code, category, marks_number=marks, meaning=meaning, verified=verified)


C = Category
ERRORS: dict[int, ErrorInfo] = {
    e.code: e  # type: ignore[misc]
    for e in (
        _e(21610, C.OPT_OUT, "recipient unsubscribed (replied STOP); HTTP 400, not sent, not charged"),
        _e(21211, C.INVALID_RECIPIENT, "invalid 'To' number", marks=True),
        _e(21614, C.INVALID_RECIPIENT, "'To' not a valid mobile / not SMS-capable", marks=True),
        _e(21635, C.INVALID_RECIPIENT, "'To' is a landline (non-US/CA/UK)", marks=True),
        # Unroutable from *this* From: the number may be fine from another sender.
        _e(21612, C.PERMANENT, "'To' unreachable from this 'From'"),
        _e(21408, C.PERMANENT, "geo permission not enabled for the 'To' region", verified=False),
        _e(21606, C.PERMANENT, "'From' not SMS-capable"),
        _e(21608, C.PERMANENT, "'To' not verified (trial account / no compliance profile)"),
        _e(21602, C.PERMANENT, "body required"),
        _e(21603, C.PERMANENT, "'From' required"),
        _e(21604, C.PERMANENT, "'To' required"),
        _e(21617, C.PERMANENT, "body exceeds 1600 characters"),
        _e(20003, C.PERMANENT, "authentication failed"),
        _e(20404, C.PERMANENT, "resource not found (wrong account?)"),
        _e(21611, C.QUEUE_FULL, "'From' exceeded its queue of pending messages"),
        _e(20429, C.RETRYABLE, "too many requests"),
        _e(20500, C.RETRYABLE, "internal server error"),
        _e(20503, C.RETRYABLE, "service unavailable"),
        # Asynchronous (status callback ErrorCode).
        _e(30001, C.UNDELIVERED_TEMPORARY, "queue overflow (Messaging Service, after creation)"),
        _e(30003, C.UNDELIVERED_TEMPORARY, "unreachable handset (often temporary)"),
        _e(30004, C.UNDELIVERED_TEMPORARY, "message blocked", verified=False),
        _e(30005, C.UNDELIVERABLE_NUMBER, "unknown destination handset", marks=True, verified=False),
        _e(30006, C.UNDELIVERABLE_NUMBER, "landline or unreachable carrier", marks=True),
        _e(30007, C.UNDELIVERED_TEMPORARY, "filtered by carrier"),
        _e(30008, C.UNDELIVERED_TEMPORARY, "unknown error", verified=False),
        _e(30032, C.PERMANENT, "toll-free sender not verified"),
        _e(30034, C.PERMANENT, "unregistered 10DLC sender", verified=False),
    )
}
del C

# The codes that mean "the recipient opted out", read off the table above (no second list).
OPT_OUT_CODES: frozenset[int] = frozenset(code for code, e in ERRORS.items() if e.category is Category.OPT_OUT)
# Callback statuses that carry a final error (Twilio sets ErrorCode on these only).
_ERROR_STATUSES = frozenset({"failed", "undelivered"})

_RETRYABLE_HTTP = frozenset({429, 500, 502, 503})


def classify(code: int | None, http_status: int | None = None) -> ErrorInfo:
    """What to do with an error answer to a create (``TwilioRestException.code`` / ``.status``).

    twilio-python puts the HTTP status in ``code`` when the body had no Twilio code, so a bare
    ``code=429`` is read as HTTP 429.
    """
    if code is not None and code in ERRORS:
        return ERRORS[code]
    status = http_status if http_status is not None else (code if code is not None and code < 600 else None)
    if status in _RETRYABLE_HTTP:
        return ErrorInfo(code, Category.RETRYABLE, marks_number=False, meaning=f"HTTP {status}")
    if status is not None and status >= 500:
        # 504 (and any other 5xx we have no reason to trust) may hide a created message.
        return ErrorInfo(
            code, Category.OUTCOME_UNKNOWN, marks_number=False, meaning=f"HTTP {status}: may have been processed"
        )
    return ErrorInfo(
        code, Category.PERMANENT, marks_number=False, meaning=f"unlisted error {code} (HTTP {status})", verified=False
    )


def classify_delivery_error(code: int | None) -> ErrorInfo:
    """What a status callback's ErrorCode means for the number (30xxx); unknown codes blame nothing."""
    if code is not None and code in ERRORS:
        return ERRORS[code]
    meaning = f"unlisted delivery error {code}"
    return ErrorInfo(code, Category.UNDELIVERED_TEMPORARY, marks_number=False, meaning=meaning, verified=False)


def is_opt_out(code: int | None) -> bool:
    """True when Twilio's code says the recipient opted out of this sender (see OPT_OUT_CODES)."""
    return code in OPT_OUT_CODES


def callback_reports_opt_out(status: str, code: int | None) -> bool:
    """A status callback saying the message failed because the recipient opted out (21610 after
    acceptance, e.g. through a Messaging Service): the same carrier opt-out as a refused create."""
    return status in _ERROR_STATUSES and is_opt_out(code)
