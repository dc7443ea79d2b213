"""Quiet hours (compliance.quiet_hours): state windows, DST changes, multi-zone numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.quiet_hours import (
    WINDOWS,
    DayWindow,
    UnknownZone,
    is_lawful,
    local_window,
    next_lawful_minute,
)

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
LA = ZoneInfo("America/Los_Angeles")
BOISE = ZoneInfo("America/Boise")
ADAK = ZoneInfo("America/Adak")
ANCH = ZoneInfo("America/Anchorage")


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz)


@pytest.mark.parametrize(
    ("day", "states", "expected"),
    [
        (date(2026, 5, 6), (), DayWindow.of("08:00", "21:00")),  # federal
        (date(2026, 5, 6), ("FL",), DayWindow.of("08:00", "20:00")),
        (date(2026, 5, 6), ("CT",), DayWindow.of("09:00", "20:00")),
        (date(2026, 5, 6), ("KY",), DayWindow.of("10:00", "21:00")),
        (date(2026, 5, 6), ("CT", "KY"), DayWindow.of("10:00", "20:00")),  # most restrictive of both
        (date(2026, 5, 9), ("TX",), DayWindow.of("09:00", "21:00")),  # Saturday
        (date(2026, 5, 10), ("TX",), DayWindow.of("12:00", "21:00")),  # Sunday
        (date(2026, 5, 8), ("RI",), DayWindow.of("09:00", "18:00")),  # Friday
        (date(2026, 5, 9), ("RI",), DayWindow.of("10:00", "17:00")),  # Saturday
        (date(2026, 5, 10), ("RI",), None),  # Sunday
        (date(2026, 5, 10), ("AL",), None),
        (date(2026, 5, 10), ("MS",), None),
        (date(2026, 7, 3), ("AL",), None),  # Independence Day observed (Friday)
        (date(2026, 7, 3), ("MS",), DayWindow.of("08:00", "20:00")),  # MS: Sundays only
        (date(2026, 5, 10), ("PA",), DayWindow.of("13:30", "21:00")),
        (date(2026, 5, 6), ("ZZ",), DayWindow.of("08:00", "21:00")),  # unknown state: federal only
    ],
)
def test_local_window_table(day: date, states: tuple[str, ...], expected: DayWindow | None) -> None:
    """Each state's window (docs/compliance.md#state-windows) and the federal one: strictest wins."""
    assert local_window(day, states) == expected


def test_every_state_rule_is_within_the_federal_window() -> None:
    """No state rule is looser than 08:00-21:00 (the federal floor is applied anyway)."""
    for state, rule in WINDOWS.items():
        for window in rule.weekdays:
            if window is not None:
                assert window.start >= 8 * 60, state
                assert window.end <= 21 * 60, state


@pytest.mark.parametrize(
    ("now", "zones", "states", "expected"),
    [
        # Inside the window: now itself.
        (at(NY, 2026, 5, 6, 12), ("America/New_York",), (), at(NY, 2026, 5, 6, 12)),
        # Before 08:00 on the day clocks spring forward (2026-03-08): 08:00 EDT = 12:00 UTC.
        (at(NY, 2026, 3, 8, 1, 59), ("America/New_York",), (), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        (at(NY, 2026, 3, 8, 7, 30), ("America/New_York",), (), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # The evening before the change: next morning 08:00 is already EDT.
        (at(NY, 2026, 3, 7, 21, 30), ("America/New_York",), (), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # Clocks fall back (2026-11-01): 08:00 EST = 13:00 UTC; 01:30 happens twice.
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), ("America/New_York",), (), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), ("America/New_York",), (), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # Florida 20:00 end, Pensacola (Chicago zone).
        (at(CHI, 2026, 5, 6, 20, 0), ("America/Chicago",), ("FL",), at(CHI, 2026, 5, 7, 8, 0)),
        # Alaska: Adak is an hour behind Anchorage; both must be >= 08:00.
        (at(ANCH, 2026, 7, 1, 8, 30), ("America/Adak", "America/Anchorage"), ("AK",), at(ADAK, 2026, 7, 1, 8, 0)),
        # Idaho: Boise + Los Angeles. Morning waits for LA; evening stops at Boise's 21:00.
        (at(BOISE, 2026, 7, 1, 8, 30), ("America/Boise", "America/Los_Angeles"), ("ID",), at(LA, 2026, 7, 1, 8, 0)),
        (at(LA, 2026, 7, 1, 20, 30), ("America/Boise", "America/Los_Angeles"), ("ID",), at(LA, 2026, 7, 2, 8, 0)),
        # Texas Sunday starts at noon; Saturday at nine.
        (at(CHI, 2026, 5, 10, 10, 0), ("America/Chicago",), ("TX",), at(CHI, 2026, 5, 10, 12, 0)),
        (at(CHI, 2026, 5, 9, 8, 30), ("America/Chicago",), ("TX",), at(CHI, 2026, 5, 9, 9, 0)),
        # Rhode Island Saturday 17:00 -> no Sunday -> Monday 09:00.
        (at(NY, 2026, 5, 9, 17, 0), ("America/New_York",), ("RI",), at(NY, 2026, 5, 11, 9, 0)),
        # Alabama: Sunday closed, and Monday 2026-01-19 is a state holiday -> Tuesday 08:00.
        (at(CHI, 2026, 1, 18, 9, 0), ("America/Chicago",), ("AL",), at(CHI, 2026, 1, 20, 8, 0)),
        # A seconds-precise "now" inside a closed period rounds up to a whole minute, never down.
        (at(NY, 2026, 5, 6, 7, 59) + timedelta(seconds=30), ("America/New_York",), (), at(NY, 2026, 5, 6, 8, 0)),
    ],
)
def test_next_lawful_minute(now: datetime, zones: tuple[str, ...], states: tuple[str, ...], expected: datetime) -> None:
    """The answer is now when lawful, else the first lawful minute in every zone (DST-aware)."""
    assert next_lawful_minute(now, zones, states) == expected


def test_end_margin_moves_the_end_earlier() -> None:
    """With a 1-minute margin, 19:59:30 in Connecticut is already too late for today."""
    now = at(NY, 2026, 5, 6, 19, 59) + timedelta(seconds=30)
    assert next_lawful_minute(now, ("America/New_York",), ("CT",)) == now
    assert next_lawful_minute(now, ("America/New_York",), ("CT",), end_margin=timedelta(minutes=1)) == at(
        NY, 2026, 5, 7, 9, 0
    )


def test_zones_without_a_common_window_give_none() -> None:
    """Rhode Island's 9-hour weekday window never overlaps between zones 12-13 hours apart."""
    now = at(NY, 2026, 5, 6, 12)
    assert next_lawful_minute(now, ("America/New_York", "Asia/Shanghai"), ("RI",)) is None


def test_is_lawful_and_input_errors() -> None:
    """is_lawful agrees with next_lawful_minute; naive times, no zones and bad zones are refused."""
    assert is_lawful(at(NY, 2026, 5, 6, 12), ("America/New_York",))
    assert not is_lawful(at(NY, 2026, 5, 6, 22), ("America/New_York",))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_lawful_minute(datetime(2026, 5, 6, 12), ("America/New_York",))
    with pytest.raises(ValueError, match="at least one"):
        next_lawful_minute(at(NY, 2026, 5, 6, 12), ())
    with pytest.raises(UnknownZone):
        next_lawful_minute(at(NY, 2026, 5, 6, 12), ("Mars/Olympus_Mons",))


_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Boise",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
]
_STATES = ["FL", "CT", "TX", "RI", "AL", "KY", "PA", "NY", "CA"]


def _lawful_by_scan(t: datetime, zones: list[str], states: list[str]) -> bool:
    for zone in zones:
        local = t.astimezone(ZoneInfo(zone))
        window = local_window(local.date(), states)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        if window is None or not (window.start * 60 <= seconds < window.end * 60):
            return False
    return True


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    zones=st.lists(st.sampled_from(_ZONES), min_size=1, max_size=3, unique=True),
    states=st.lists(st.sampled_from(_STATES), max_size=2, unique=True),
)
def test_next_lawful_minute_matches_a_minute_scan(start: datetime, zones: list[str], states: list[str]) -> None:
    """Against a brute-force minute scan: the answer is lawful and no earlier minute is."""
    start = start.replace(second=0, microsecond=0)
    found = next_lawful_minute(start, zones, states, horizon=timedelta(days=4))
    t = start
    limit = start + timedelta(days=4)
    while t < limit and not _lawful_by_scan(t, zones, states):
        t += timedelta(minutes=1)
    if t >= limit:
        assert found is None
    else:
        assert found == t
