"""CSV cells that a spreadsheet will not run as formulas (CSV injection).

Compliance exports carry text customers wrote ("=HYPERLINK(...)" is a valid SMS body) and
are opened in spreadsheets by people who trust them. A cell that starts with one of the
characters a spreadsheet reads as the start of a formula or a command is written with a
leading apostrophe, which every spreadsheet shows as text and a reader can strip: the
apostrophe is the only change, so the original value is the cell minus its first character
whenever the second character is one of :data:`TRIGGERS` (docs/reports.md says so for auditors).

The rule applies to every cell, not only to message bodies, so no column can be forgotten;
E.164 numbers ("+1415...") are prefixed too, which also stops spreadsheets turning them into
numbers.
"""

from __future__ import annotations

__all__ = ["PREFIX", "TRIGGERS", "safe_cell", "unsafe_cell"]

PREFIX = "'"
# "=", "+", "-", "@" start formulas; TAB and CR are read as cell separators by some
# importers (OWASP's list); NUL is refused by some readers and hides what follows it.
TRIGGERS = frozenset("=+-@\t\r\x00")


def safe_cell(value: str) -> str:
    """``value``, with an apostrophe in front if a spreadsheet would read it as a formula."""
    if value and value[0] in TRIGGERS:
        return PREFIX + value
    return value


def unsafe_cell(cell: str) -> str:
    """The value :func:`safe_cell` was given (what an auditor's script does to read a cell back)."""
    if len(cell) >= 2 and cell[0] == PREFIX and cell[1] in TRIGGERS:
        return cell[1:]
    return cell
