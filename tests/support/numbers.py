"""Recipient numbers for end-to-end marketing tests that must not be held by quiet hours.

Marketing texts are always subject to quiet hours, and end-to-end tests run on the real
clock, so a test that needs marketing to go out picks numbers whose every candidate zone is
inside the window now and for the next ``minutes``. The regions below cover every hour of
the day between them (New York, Chicago, Los Angeles, Honolulu, Guam, London, Tokyo,
Singapore).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import phonenumbers

from compliance.quiet_hours import next_lawful_minute
from compliance.recipient import locate

# (prefix, digits to fill) for valid numbers in a single time zone.
REGIONS = [
    ("+1212555", 4),
    ("+1312555", 4),
    ("+1415555", 4),
    ("+1808555", 4),
    ("+1671555", 4),
    ("+447911", 6),
    ("+8131234", 4),
    ("+659123", 4),
]


def numbers_lawful_now(count: int, *, minutes: int = 30, seed: int | None = None) -> list[str]:
    """``count`` distinct valid numbers whose recipients are inside the sending window for ``minutes``."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for prefix, digits in REGIONS:
        sample = _number(prefix, digits, rng)
        loc = locate(sample)
        if not loc.known:
            continue
        lawful = next_lawful_minute(now, loc.zones, loc.states, end_margin=timedelta(minutes=minutes))
        if lawful != now:
            continue
        found: set[str] = set()
        while len(found) < count:
            candidate = _number(prefix, digits, rng)
            if locate(candidate).zones == loc.zones:
                found.add(candidate)
        return sorted(found)
    raise RuntimeError("no region is inside its sending window now (the REGIONS list should cover every hour)")


def _number(prefix: str, digits: int, rng: random.Random) -> str:
    while True:
        candidate = prefix + "".join(str(rng.randrange(10)) for _ in range(digits))
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate
