"""compliance.csv_safety: cells a spreadsheet would run as formulas get one leading apostrophe."""

from __future__ import annotations

import pytest

from compliance.csv_safety import safe_cell, unsafe_cell


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+14155550123", "-1", "@SUM(A1)", "\tx", "\rx", "\x00x"])
def test_trigger_characters_are_prefixed(value: str) -> None:
    """A cell starting with = + - @ TAB CR or NUL gains exactly one apostrophe, and reads back unchanged."""
    assert safe_cell(value) == "'" + value
    assert unsafe_cell(safe_cell(value)) == value


@pytest.mark.parametrize("value", ["", "STOP", "'quoted", "1.5", " =spaced"])
def test_other_cells_are_left_alone(value: str) -> None:
    """Empty cells, words, numbers and a leading space or apostrophe are written as they are."""
    assert safe_cell(value) == value
    assert unsafe_cell(value) == value
