"""compliance.report_tally.Tally.merge: a tally split anywhere and merged equals one tally over all rows."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance import report_tally
from compliance.report_tally import Tally

START, END = date(2026, 1, 1), date(2026, 1, 31)

_facts = st.fixed_dictionaries({
    "day": st.integers(0, 30),
    "method": st.sampled_from(["exact_keyword", "staff", "carrier_21610"]),
    "honour_us": st.integers(0, 10**12),
    "confirmation_us": st.none() | st.integers(0, 10**9),
    "no_confirmation": st.none() | st.sampled_from(["repeat", "advanced_opt_out"]),
    "sends_after": st.integers(0, 3),
    "violations": st.lists(st.sampled_from(["sent_after_opt_out", "honoured_late", "confirmation_late"]),
                           max_size=2, unique=True),
})  # fmt: skip


def _add(tally: Tally, seq: int, f: dict[str, Any]) -> None:
    tally.add(
        seq=seq, event_id=uuid.UUID(int=seq), received_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=f["day"]),
        method=f["method"], honour_latency=timedelta(microseconds=f["honour_us"]),
        confirmation_latency=None if f["confirmation_us"] is None else timedelta(microseconds=f["confirmation_us"]),
        no_confirmation=f["no_confirmation"], sends_after=f["sends_after"], violations=tuple(f["violations"]),
        details={"seq_text": str(seq)},
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_facts, max_size=40), cut=st.integers(0, 40), listed=st.integers(1, 5))
def test_merging_a_split_equals_the_whole(rows: list[dict[str, Any]], cut: int, listed: int) -> None:
    report_tally.LISTED_VIOLATIONS, saved = listed, report_tally.LISTED_VIOLATIONS
    try:
        whole, first, later = Tally(START, END), Tally(START, END), Tally(START, END)
        for seq, f in enumerate(rows):
            _add(whole, seq, f)
            _add(first if seq < cut else later, seq, f)
        first.merge(later)
    finally:
        report_tally.LISTED_VIOLATIONS = saved
    assert first.as_dict() == whole.as_dict()
    assert first.violations_dict([]) == whole.violations_dict([])
    # Every field, not only what as_dict shows (a field added later must be merged too).
    for field in dataclasses.fields(Tally):
        assert getattr(first, field.name) == getattr(whole, field.name), field.name
