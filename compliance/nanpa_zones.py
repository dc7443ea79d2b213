"""Building the split-zone table (compliance/split_zones.py) from NANPA's NPA report.

Maintenance, run by hand when NANPA publishes a newer report
(docs/compliance.md#split-zone-area-codes): ``python -m compliance.nanpa_zones npa_report.csv``
rewrites ``compliance/data/split_area_codes.csv``. The report
(https://www.nationalnanpa.com/nanp1/npa_report.csv) is a "File Date" line, then a header and
one row per area code; its TIME_ZONE column names each code's zones by letter, several for a
split code ("EC" for 850). The letters do not say all of it, and a refresh must be a re-run,
not a hand edit, so three rules live here:

- An overlay code serves its complex's whole territory, yet NANPA sometimes gives it one letter
  (986 "P" over 208 "MP", 930 "E" over 812 "EC"): each code takes the union of its complex.
- A few TIME_ZONE values are prose ("PT/MT only for W Wendover"): read through :data:`PROSE`
  after a person read them; any other prose on a US code stops the build instead of a guess.
- Splits a letter cannot express (Arizona's Navajo Nation keeps daylight time, Alaska's western
  Aleutians are an hour behind Anchorage): :data:`SUPPLEMENTS`, each naming its own source.

Pure apart from the ``__main__`` block: text in, rows out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import datetime

from compliance.split_zones import COLUMNS, DATA_FILE, SplitAreaCode

__all__ = ["LETTER_ZONES", "PROSE", "SUPPLEMENTS", "build", "render"]

# NANPA's letters as IANA zones: the tz database's "most areas" zone of each US time zone.
LETTER_ZONES = {
    "E": "America/New_York",
    "C": "America/Chicago",
    "M": "America/Denver",
    "P": "America/Los_Angeles",
}

# TIME_ZONE prose, as letters. West Wendover, Nevada keeps Mountain time; the rest of 775 Pacific.
PROSE = {"PT/MT only for W Wendover": "PM"}

# A one-zone value that is not a letter of LETTER_ZONES: Atlantic, Alaska, Newfoundland, "(UTC-10)".
_ONE_ZONE = re.compile(r"A|AK|N|\(?UTC[+-]\d{1,2}\)?")

# (npa, state, zones, source): splits NANPA's one letter for the code does not show.
SUPPLEMENTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "907",
        "AK",
        ("America/Adak", "America/Anchorage"),
        "supplement (NANPA TIME_ZONE=AK): tz database zone.tab America/Adak 'Alaska - western Aleutians'"
        " is an hour behind America/Anchorage; 907 is Alaska's only area code in the NANPA report",
    ),
    (
        "928",
        "AZ",
        ("America/Denver", "America/Phoenix"),
        "supplement (NANPA TIME_ZONE=M): tz database zone.tab America/Phoenix 'MST - AZ (except Navajo)'"
        " (the Navajo Nation keeps daylight time); phonenumbers 9.0.43 gives America/Denver to 928's"
        " Window Rock, Chinle, Kayenta and Tuba City exchanges",
    ),
)


def _file_date(first_line: str) -> str:
    label, _, value = first_line.partition(",")
    if label.strip() != "File Date":
        raise ValueError(f"not NANPA's NPA report: the first line is {first_line[:40]!r}, not 'File Date,MM/DD/YYYY'")
    return datetime.strptime(value.strip(), "%m/%d/%Y").date().isoformat()


def _letters(npa: str, value: str) -> frozenset[str]:
    value = PROSE.get(value.strip(), value.strip())
    if re.fullmatch(r"[ECMP]+", value):
        return frozenset(value)
    if not value:
        return frozenset()
    if _ONE_ZONE.fullmatch(value):
        return frozenset({value})
    raise ValueError(f"area code {npa}: TIME_ZONE {value!r} is not letters; read it and add it to PROSE")


def build(report: str, checked_on: str) -> tuple[str, list[SplitAreaCode]]:
    """The report's file date and its US area codes that span zones, supplements included."""
    lines = report.splitlines()
    file_date = _file_date(lines[0] if lines else "")
    rows = [r for r in csv.DictReader(lines[1:]) if r["COUNTRY"] == "US" and r["USE"] == "G" and r["ASSIGNED"] == "Yes"]
    letters = {r["NPA_ID"]: _letters(r["NPA_ID"], r["TIME_ZONE"]) for r in rows}
    found: dict[str, SplitAreaCode] = {}
    for r in rows:
        npa = r["NPA_ID"]
        members = [m for m in re.findall(r"\d{3}", r["OVERLAY_COMPLEX"]) if m in letters and m != npa]
        union = letters[npa].union(*(letters[m] for m in members))
        if len(union) < 2:
            continue
        if not union <= LETTER_ZONES.keys():
            raise ValueError(f"area code {npa}: zones {sorted(union)} mix letters and other values")
        source = f"NANPA NPA report {file_date}: TIME_ZONE={r['TIME_ZONE'].strip()}"
        widened = [f"{m} ({''.join(sorted(letters[m]))})" for m in members if not letters[m] <= letters[npa]]
        if widened:
            source += f"; overlay {r['OVERLAY_COMPLEX'].strip()} with " + ", ".join(widened)
        zones = tuple(sorted(LETTER_ZONES[letter] for letter in union))
        found[npa] = SplitAreaCode(npa, (r["LOCATION"],), zones, source, checked_on)
    for npa, state, zones, source in SUPPLEMENTS:
        if npa in found:
            raise ValueError(f"area code {npa}: NANPA now splits it ({found[npa].source}); review its supplement")
        found[npa] = SplitAreaCode(npa, (state,), zones, source, checked_on)
    return file_date, [found[npa] for npa in sorted(found)]


def render(report: bytes, checked_on: str) -> str:
    """The table file for a downloaded report: provenance comments (file date, SHA-256), then the rows."""
    file_date, rows = build(report.decode("utf-8-sig"), checked_on)
    out = io.StringIO()
    out.write("# Area codes whose territory spans more than one time zone.\n")
    out.write("# Source, date and method: docs/compliance.md#split-zone-area-codes.\n")
    out.write("# Built by `python -m compliance.nanpa_zones npa_report.csv` from NANPA's NPA report\n")
    out.write(f"# (https://www.nationalnanpa.com/nanp1/npa_report.csv), File Date {file_date},\n")
    out.write(f"# SHA-256 {hashlib.sha256(report).hexdigest()}. Do not edit by hand: re-run on a newer report.\n")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row.to_row() for row in rows)
    return out.getvalue()


if __name__ == "__main__":  # pragma: no cover - maintenance: rebuild the table from a downloaded report
    import sys
    from datetime import date
    from pathlib import Path

    if len(sys.argv) != 2:
        sys.exit("usage: python -m compliance.nanpa_zones path/to/npa_report.csv")
    out_path = Path(__file__).parent / "data" / DATA_FILE
    out_path.write_text(render(Path(sys.argv[1]).read_bytes(), date.today().isoformat()), encoding="utf-8")
    print(f"wrote {out_path}", file=sys.stderr)
