"""Area codes whose territory keeps more than one clock, and every zone each one spans.

phonenumbers places a NANP number by its leading digits and, for any exchange it has no entry
for, falls back to one zone for the whole area code: 850 (Florida panhandle) and 270 (western
Kentucky) are Eastern there, though much of each keeps Central time, so a text at 08:00 Eastern
reaches people at 07:00. A number is not a place either (mobiles move, lines are ported), so an
exchange-level answer is no proof. The area code's own zones are therefore data,
``compliance/data/split_area_codes.csv``, built from NANPA's NPA report by
compliance/nanpa_zones.py (docs/compliance.md#split-zone-area-codes: source, date, method), and
:func:`compliance.recipient.locate` adds them to phonenumbers' zones, so quiet hours must hold
in every one (the conservative rule of compliance/quiet_hours.py).

Pure: reads one packaged CSV once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from compliance.package_data import read_table

__all__ = ["COLUMNS", "DATA_FILE", "SplitAreaCode", "area_code_zones", "index", "split_area_codes"]

DATA_FILE = "split_area_codes.csv"
COLUMNS = ("npa", "states", "zones", "source", "checked_on")


@dataclass(frozen=True, slots=True)
class SplitAreaCode:
    """One row of the table; ``source`` says which published data puts the code in those zones."""

    npa: str
    states: tuple[str, ...]
    zones: tuple[str, ...]
    source: str
    checked_on: str

    def to_row(self) -> dict[str, str]:
        """The CSV row, lists ';'-separated (the inverse of :func:`split_area_codes`' reading)."""
        return {
            "npa": self.npa,
            "states": ";".join(self.states),
            "zones": ";".join(self.zones),
            "source": self.source,
            "checked_on": self.checked_on,
        }


@functools.cache
def split_area_codes() -> dict[str, SplitAreaCode]:
    """The shipped table by area code."""
    return index(read_table(DATA_FILE))


def index(rows: Iterable[Mapping[str, str]]) -> dict[str, SplitAreaCode]:
    """Table rows by area code. A code listed twice is a broken table, refused rather than half-read."""
    table: dict[str, SplitAreaCode] = {}
    for row in rows:
        entry = SplitAreaCode(
            npa=row["npa"],
            states=tuple(row["states"].split(";")),
            zones=tuple(row["zones"].split(";")),
            source=row["source"],
            checked_on=row["checked_on"],
        )
        if entry.npa in table:
            raise ValueError(f"{DATA_FILE}: area code {entry.npa} is listed twice")
        table[entry.npa] = entry
    return table


def area_code_zones(npa: str) -> tuple[str, ...]:
    """Every zone the area code's territory spans; () for a code that keeps one clock."""
    entry = split_area_codes().get(npa)
    return entry.zones if entry else ()
