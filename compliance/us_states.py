"""Where a US number or address is: area code -> state, state -> time zones, address -> state.

Quiet hours depend on the recipient's state (docs/compliance.md#state-windows) and local time.
phonenumbers gives time zones, but its geocoder answers free text ("San Francisco, CA",
"Florida", "Washington State") that is not a clean state code
(docs/compliance.md#phone-numbers-and-time-zones). So the area-code table is data
(``compliance/data/us_npa_states.csv``), generated once from that geocoder by
:func:`generate_npa_table` and checked against it by the unit tests. An area code names where
the number was *issued*, not where the person is; the FTSA presumes the same (Fla. Stat.
501.059), and the gate adds the customer's address state when one is known.

Pure: reads one packaged CSV once; no network, no database.
"""

from __future__ import annotations

import functools
import json
import re

from compliance.package_data import read_table

__all__ = [
    "STATE_NAMES",
    "STATE_ZONES",
    "generate_npa_table",
    "npa_state",
    "state_from_address",
]

# Full names (and the geocoder's spellings) -> USPS codes: 50 states, DC, inhabited territories.
STATE_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "Washington State": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC", "District of Columbia": "DC",
    "Puerto Rico": "PR", "U.S. Virgin Islands": "VI", "Guam": "GU", "American Samoa": "AS",
    "Northern Mariana Islands": "MP",
}  # fmt: skip

# Every IANA zone in use somewhere in the state (official observance). Multi-zone states list
# all of them: quiet hours must hold in each (docs/compliance.md#phone-numbers-and-time-zones).
STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": ("America/Chicago",),
    "AK": ("America/Anchorage", "America/Juneau", "America/Sitka", "America/Yakutat", "America/Nome",
           "America/Metlakatla", "America/Adak"),
    "AZ": ("America/Phoenix", "America/Denver"),  # the Navajo Nation observes DST
    "AR": ("America/Chicago",),
    "CA": ("America/Los_Angeles",),
    "CO": ("America/Denver",),
    "CT": ("America/New_York",),
    "DE": ("America/New_York",),
    "DC": ("America/New_York",),
    "FL": ("America/New_York", "America/Chicago"),
    "GA": ("America/New_York",),
    "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", "America/Los_Angeles"),
    "IL": ("America/Chicago",),
    "IN": ("America/Indiana/Indianapolis", "America/Chicago"),
    "IA": ("America/Chicago",),
    "KS": ("America/Chicago", "America/Denver"),
    "KY": ("America/New_York", "America/Chicago"),
    "LA": ("America/Chicago",),
    "ME": ("America/New_York",),
    "MD": ("America/New_York",),
    "MA": ("America/New_York",),
    "MI": ("America/Detroit", "America/Menominee"),
    "MN": ("America/Chicago",),
    "MS": ("America/Chicago",),
    "MO": ("America/Chicago",),
    "MT": ("America/Denver",),
    "NE": ("America/Chicago", "America/Denver"),
    "NV": ("America/Los_Angeles", "America/Denver"),  # West Wendover keeps Mountain time
    "NH": ("America/New_York",),
    "NJ": ("America/New_York",),
    "NM": ("America/Denver",),
    "NY": ("America/New_York",),
    "NC": ("America/New_York",),
    "ND": ("America/Chicago", "America/North_Dakota/Center", "America/Denver"),
    "OH": ("America/New_York",),
    "OK": ("America/Chicago",),
    "OR": ("America/Los_Angeles", "America/Boise"),
    "PA": ("America/New_York",),
    "RI": ("America/New_York",),
    "SC": ("America/New_York",),
    "SD": ("America/Chicago", "America/Denver"),
    "TN": ("America/Chicago", "America/New_York"),
    "TX": ("America/Chicago", "America/Denver"),
    "UT": ("America/Denver",),
    "VT": ("America/New_York",),
    "VA": ("America/New_York",),
    "WA": ("America/Los_Angeles",),
    "WV": ("America/New_York",),
    "WI": ("America/Chicago",),
    "WY": ("America/Denver",),
    "PR": ("America/Puerto_Rico",),
    "VI": ("America/St_Thomas",),
    "GU": ("Pacific/Guam",),
    "MP": ("Pacific/Saipan",),
    "AS": ("Pacific/Pago_Pago",),
}

_DATA_FILE = "us_npa_states.csv"


@functools.cache
def _npa_table() -> dict[str, str]:
    return {row["npa"]: row["state"] for row in read_table(_DATA_FILE)}


def npa_state(e164: str) -> str | None:
    """The USPS code of the state (or territory) a +1 number's area code belongs to; None if not US."""
    if not e164.startswith("+1") or len(e164) != 12:
        return None
    return _npa_table().get(e164[2:5])


_ZIP_STATE = re.compile(r"(?:^|[\s,])([A-Za-z]{2})\.?,?\s+\d{5}(?:-\d{4})?\b")
_TRAILING_STATE = re.compile(r",\s*([A-Z]{2})\s*(?:,?\s*(?:USA|US|United States))?\s*$")
_NAMES_BY_LENGTH = sorted(STATE_NAMES, key=len, reverse=True)


def state_from_address(address: str | None) -> str | None:
    """The state of a free-text or JSON US address, or None when it cannot be read with confidence.

    Accepts ``{"state": "TX", ...}`` JSON, "…, Austin, TX 78701", "…, Austin, TX" and
    "…, Austin, Texas 78701". The last state-like token wins (street names can look like states).
    """
    if not address or not address.strip():
        return None
    text = address.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key in ("state", "region", "state_code", "province"):
                value = parsed.get(key)
                if isinstance(value, str):
                    code = _code(value)
                    if code:
                        return code
            return None
    matches = _ZIP_STATE.findall(text)
    for candidate in reversed(matches):
        if str(candidate).upper() in STATE_ZONES:
            return str(candidate).upper()
    trailing = _TRAILING_STATE.search(text)
    if trailing and trailing.group(1) in STATE_ZONES:
        return str(trailing.group(1))
    for name in _NAMES_BY_LENGTH:
        if re.search(rf"(?:^|,)\s*{re.escape(name)}\s*(?:\d{{5}}(?:-\d{{4}})?)?\s*(?:,\s*(?:USA|US))?\s*$", text,
                     re.IGNORECASE):
            return STATE_NAMES[name]
    return None


def _code(value: str) -> str | None:
    v = value.strip()
    if v.upper() in STATE_ZONES:
        return v.upper()
    for name, code in STATE_NAMES.items():
        if name.lower() == v.lower():
            return code
    return None


def generate_npa_table() -> dict[str, str]:
    """Area code -> state from phonenumbers' geocoder (run by hand when phonenumbers updates).

    For each NANP area code assigned to the US or a US territory, samples exchanges until the
    geocoder describes a valid number, then reads the state from "City, ST" or a state name.
    Non-geographic codes (toll-free 8XX, 5XX personal numbers, 900) have no state and are left out.
    """
    import phonenumbers
    from phonenumbers import geocoder

    territories = {"PR", "VI", "GU", "MP", "AS"}
    table: dict[str, str] = {}
    for npa in range(200, 1000):
        for exchange in range(201, 1000):
            num = phonenumbers.parse(f"+1{npa}{exchange}1234")
            if not phonenumbers.is_valid_number(num):
                continue
            region = phonenumbers.region_code_for_number(num)
            if region in territories:
                table[str(npa)] = region
                break
            if region != "US":
                break
            desc = geocoder.description_for_number(num, "en")
            if not desc:
                continue
            m = re.search(r", ([A-Z]{2})$", desc)
            code = m.group(1) if m else STATE_NAMES.get(desc)
            if code is None:
                raise ValueError(f"cannot read a state from geocoder text {desc!r} for area code {npa}")
            table[str(npa)] = code
            break
    return table


if __name__ == "__main__":  # pragma: no cover - maintenance: regenerate the data file
    import sys
    from pathlib import Path

    out = Path(__file__).parent / "data" / _DATA_FILE
    table = generate_npa_table()
    with out.open("w", encoding="utf-8", newline="") as fh:
        fh.write("# Area code -> USPS state/territory code. Generated by `python -m compliance.us_states`\n")
        fh.write("# from phonenumbers' geocoder; do not edit by hand (tests compare it with the library).\n")
        fh.write("npa,state\n")
        for npa in sorted(table):
            fh.write(f"{npa},{table[npa]}\n")
    print(f"wrote {len(table)} area codes to {out}", file=sys.stderr)
