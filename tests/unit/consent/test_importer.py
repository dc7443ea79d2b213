"""The importer's fast path for numbers already in +1 E.164 form agrees with normalize()."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.phones import normalize
from worker.consent.importer import NANP_E164_PATTERN


@settings(max_examples=2000)
@given(st.from_regex(re.compile(NANP_E164_PATTERN), fullmatch=True))
def test_fast_path_numbers_normalise_to_themselves(raw: str) -> None:
    """Every string the fast path accepts is already normalize()'s answer, so both give one blind index."""
    assert normalize(raw, require_valid=False) == raw


def test_fast_path_rejects_other_spellings() -> None:
    """Spellings with spaces, a leading 1 without +, or a 0/1 area code go through the full parser."""
    pattern = re.compile(NANP_E164_PATTERN)
    for raw in ("+1 415 200 0000", "14152000000", "+10152000000", "+11152000000", "+141520000001", "+4415200000"):
        assert not pattern.fullmatch(raw)
