"""Twilio error codes -> the sender's action (compliance.twilio_errors)."""

from __future__ import annotations

import pytest

from compliance.twilio_errors import (
    ERRORS,
    OPT_OUT_CODES,
    Category,
    callback_reports_opt_out,
    classify,
    classify_delivery_error,
    is_opt_out,
)


@pytest.mark.parametrize(
    ("code", "status", "category", "marks"),
    [
        (21610, 400, Category.OPT_OUT, False),
        (21211, 400, Category.INVALID_RECIPIENT, True),
        (21614, 400, Category.INVALID_RECIPIENT, True),
        (21635, 400, Category.INVALID_RECIPIENT, True),
        (21612, 400, Category.PERMANENT, False),  # this From only: the number is not blamed
        (21408, 400, Category.PERMANENT, False),
        (21606, 400, Category.PERMANENT, False),
        (21611, 400, Category.QUEUE_FULL, False),
        (20429, 429, Category.RETRYABLE, False),
        (20003, 401, Category.PERMANENT, False),
        (429, 429, Category.RETRYABLE, False),  # no Twilio code in the body: twilio-python copies the status
        (500, 500, Category.RETRYABLE, False),
        (None, 502, Category.RETRYABLE, False),
        (20503, 503, Category.RETRYABLE, False),
        (504, 504, Category.OUTCOME_UNKNOWN, False),  # a gateway timeout may hide a created message
        (None, 599, Category.OUTCOME_UNKNOWN, False),
        (21999, 400, Category.PERMANENT, False),  # unlisted 4xx: never retried blindly
    ],
)
def test_create_errors(code: int | None, status: int, category: Category, marks: bool) -> None:
    """Each synchronous error maps to one action, and only number-level errors blame the number."""
    info = classify(code, status)
    assert info.category is category
    assert info.marks_number is marks


@pytest.mark.parametrize(
    ("code", "category", "marks"),
    [
        (30003, Category.UNDELIVERED_TEMPORARY, False),
        (30005, Category.UNDELIVERABLE_NUMBER, True),
        (30006, Category.UNDELIVERABLE_NUMBER, True),
        (30007, Category.UNDELIVERED_TEMPORARY, False),
        (39999, Category.UNDELIVERED_TEMPORARY, False),
        (None, Category.UNDELIVERED_TEMPORARY, False),
    ],
)
def test_delivery_errors(code: int | None, category: Category, marks: bool) -> None:
    """Callback error codes: only 30005/30006 make the number untextable; unknown codes blame nothing."""
    info = classify_delivery_error(code)
    assert (info.category, info.marks_number) == (category, marks)


def test_unverified_rows_are_flagged() -> None:
    """The codes whose meaning is unverified (21408, 30004, 30005, 30008, 30034) say so in the table."""
    assert {c for c, e in ERRORS.items() if not e.verified} == {21408, 30004, 30005, 30008, 30034}
    assert all(e.code == c for c, e in ERRORS.items())


def test_the_opt_out_codes_are_the_tables_opt_out_rows() -> None:
    """Only 21610 means "the recipient opted out"; 30004 (one cause among many) and 63014 (a chat
    channel's block) are not read as one (docs/compliance.md#error-21610)."""
    assert frozenset({21610}) == OPT_OUT_CODES
    assert {c for c, e in ERRORS.items() if e.category is Category.OPT_OUT} == OPT_OUT_CODES
    assert is_opt_out(21610)
    assert not any(is_opt_out(code) for code in (None, 30004, 30007, 63014, 21611, 21211))


@pytest.mark.parametrize(
    ("status", "code", "opted_out"),
    [
        ("failed", 21610, True),
        ("undelivered", 21610, True),
        ("sent", 21610, False),  # only a final error status carries a meaningful ErrorCode
        ("delivered", 21610, False),
        ("failed", 30004, False),
        ("undelivered", 30006, False),
        ("failed", None, False),
    ],
)
def test_a_callback_reports_an_opt_out_only_with_an_error_status_and_code(
    status: str, code: int | None, opted_out: bool
) -> None:
    """A status callback is a carrier opt-out when it says failed/undelivered with an opt-out code."""
    assert callback_reports_opt_out(status, code) is opted_out
