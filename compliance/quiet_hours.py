"""Lawful sending windows in the recipient's local time, and the next lawful minute.

The windows are data (:data:`WINDOWS`); docs/compliance.md#calling-hours and its state table
(docs/compliance.md#state-windows) give each rule's source. The state hours come from vendor
compilations that disagree in places; where they do, the stricter reading is used, and
anything the sources mark as unclear is marked ``[unverified]`` below. Confirm with counsel.

How rules combine (most restrictive wins):

- The federal window (§64.1200(c)(1), 08:00–21:00) applies to every recipient, wherever the
  number is from: it is the floor, and non-US numbers get nothing looser.
- Every candidate state's rule applies too (a number's area-code state and the customer's
  address state can differ), and every rule is applied in every candidate time zone.
- A local day's window is the intersection of the applicable rules' windows for that day
  (weekday, Sunday, holiday). A rule that allows nothing that day closes it.
- A moment is lawful only if it is inside that day's window in **every** candidate zone
  (a multi-zone number must be inside the window everywhere it could be;
  docs/compliance.md#phone-numbers-and-time-zones).

:func:`next_lawful_minute` never answers earlier than lawful: window edges are converted to
UTC with the later instant for a start and the earlier for an end whenever a local time is
ambiguous or does not exist (DST changes), and an optional end margin leaves room for the
provider's queue. It works on whole windows (intervals), not by scanning minutes.

Pure: zoneinfo and the ``holidays`` package only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from compliance.errors import UnknownZone

__all__ = [
    "FEDERAL",
    "WINDOWS",
    "DayWindow",
    "Rule",
    "UnknownZone",
    "is_lawful",
    "lawful_intervals",
    "local_window",
    "next_lawful_minute",
]


@dataclass(frozen=True, slots=True)
class DayWindow:
    """Allowed local time of day, ``start`` inclusive to ``end`` exclusive, in minutes after midnight."""

    start: int
    end: int

    @classmethod
    def of(cls, start: str, end: str) -> DayWindow:
        def minutes(hhmm: str) -> int:
            h, m = hhmm.split(":")
            return int(h) * 60 + int(m)

        return cls(minutes(start), minutes(end))


@dataclass(frozen=True, slots=True)
class Rule:
    """One jurisdiction's window per weekday (Monday=0); None closes the day.

    ``holidays_closed``: no sends on the state's legal holidays (``holidays`` package, US + subdivision).
    """

    weekdays: tuple[DayWindow | None, ...]
    holidays_closed: bool
    source: str

    def window(self, day: date, is_holiday: bool) -> DayWindow | None:
        if self.holidays_closed and is_holiday:
            return None
        return self.weekdays[day.weekday()]


def _every_day(start: str, end: str, source: str, *, holidays_closed: bool = False) -> Rule:
    return Rule((DayWindow.of(start, end),) * 7, holidays_closed, source)


def _week(mon_sat: DayWindow | None, sun: DayWindow | None, source: str, *, holidays_closed: bool = False) -> Rule:
    return Rule((mon_sat,) * 6 + (sun,), holidays_closed, source)


_8_20 = "08:00", "20:00"
FEDERAL = _every_day("08:00", "21:00", "47 CFR 64.1200(c)(1); docs/compliance.md#calling-hours")

# State rules (docs/compliance.md#state-windows). Keys are USPS codes.
WINDOWS: dict[str, Rule] = {
    "FL": _every_day(*_8_20, "Fla. Stat. 501.059/501.616 (FTSA)"),
    "OK": _every_day(*_8_20, "15 O.S. §775C (OTSA)"),
    "MD": _every_day(*_8_20, "Md. Com. Law §14-3201"),
    "NJ": _every_day(*_8_20, "NJ S921 per referrizer/Klaviyo"),
    "WA": _every_day(*_8_20, "RCW 80.36.390"),
    "MA": _every_day(*_8_20, "usestello/dropcowboy"),
    "CT": _every_day("09:00", "20:00", "Conn. Gen. Stat. §42-288a"),
    "NV": _every_day("09:00", "20:00", "dropcowboy"),
    # Mon–Sat 09:00–21:00, Sunday 12:00–21:00 (stricter than "Sunday from 12:00" alone).
    "TX": _week(DayWindow.of("09:00", "21:00"), DayWindow.of("12:00", "21:00"), "Texas SB 140"),
    "RI": Rule(
        (DayWindow.of("09:00", "18:00"),) * 5 + (DayWindow.of("10:00", "17:00"), None),
        True,
        "referrizer/dropcowboy (weekdays 9–18, Sat 10–17, Sun/holidays none)",
    ),
    "AL": _week(DayWindow.of(*_8_20), None, "dropcowboy/usestello (no Sunday/holiday)", holidays_closed=True),
    "LA": _week(DayWindow.of(*_8_20), None, "dropcowboy/usestello (no Sunday/holiday)", holidays_closed=True),
    "MS": _week(DayWindow.of(*_8_20), None, "dropcowboy (no Sunday)"),
    "KY": _every_day("10:00", "21:00", "KRS 367.46955(3) per usestello"),
    "CA": _every_day("09:00", "21:00", "usestello/dropcowboy"),
    "IL": _every_day("09:00", "21:00", "usestello/dropcowboy"),
    "MI": _every_day("09:00", "21:00", "usestello/dropcowboy"),
    "MN": _every_day("09:00", "21:00", "usestello/dropcowboy"),
    "NM": _every_day("09:00", "21:00", "usestello/dropcowboy"),
    # [unverified] the compilation's PA Sunday entry is garbled; 13:30–21:00 is the strictest
    # reading we know of (Pennsylvania Telemarketer Registration Act). No holidays per the table.
    "PA": _week(
        DayWindow.of("08:00", "21:00"),
        DayWindow.of("13:30", "21:00"),
        "dropcowboy [Sunday unverified]",
        holidays_closed=True,
    ),
}


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownZone(f"unknown time zone {name!r}") from exc


@functools.lru_cache(maxsize=1024)
def _holiday_dates(state: str, year: int) -> frozenset[date]:
    # "US" alone is the federal calendar; a state code adds that state's legal holidays.
    subdiv = None if state == "US" else state
    calendar = holidays.country_holidays("US", subdiv=subdiv, years=year)
    return frozenset(calendar.keys())


@functools.lru_cache(maxsize=4096)
def _rules(states: tuple[str, ...]) -> tuple[tuple[str, Rule], ...]:
    found = [(s, WINDOWS[s]) for s in sorted(set(states)) if s in WINDOWS]
    return (("US", FEDERAL), *found)


def local_window(day: date, states: Iterable[str]) -> DayWindow | None:
    """The allowed window on a local calendar day for these states (federal included); None = closed."""
    start, end = 0, 24 * 60
    for state, rule in _rules(tuple(states)):
        holiday = rule.holidays_closed and day in _holiday_dates(state, day.year)
        window = rule.window(day, holiday)
        if window is None:
            return None
        start, end = max(start, window.start), min(end, window.end)
        if start >= end:
            return None
    return DayWindow(start, end)


def _to_utc(day: date, minutes: int, tz: ZoneInfo, *, late: bool) -> datetime:
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    a = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    # Ambiguous (fall back) or missing (spring forward) local times map to two instants:
    # starts take the later one and ends the earlier one, so a window never grows.
    return max(a, b) if late else min(a, b)


Interval = tuple[datetime, datetime]


def lawful_intervals(
    zone: str, states: Iterable[str], start: datetime, end: datetime, *, end_margin: timedelta = timedelta(0)
) -> list[Interval]:
    """UTC intervals in [start, end) when local time in ``zone`` is inside the combined window."""
    tz = _zone(zone)
    states = tuple(states)
    out: list[Interval] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        window = local_window(day, states)
        if window is not None:
            s = _to_utc(day, window.start, tz, late=True)
            e = _to_utc(day, window.end, tz, late=False) - end_margin
            s, e = max(s, start), min(e, end)
            if s < e:
                if out and out[-1][1] >= s:
                    out[-1] = (out[-1][0], max(out[-1][1], e))
                else:
                    out.append((s, e))
        day += timedelta(days=1)
    return out


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _ceil_minute(t: datetime) -> datetime:
    floored = t.replace(second=0, microsecond=0)
    return floored if floored == t else floored + timedelta(minutes=1)


def next_lawful_minute(
    now: datetime,
    zones: Iterable[str],
    states: Iterable[str] = (),
    *,
    end_margin: timedelta = timedelta(0),
    horizon: timedelta = timedelta(days=14),
) -> datetime | None:
    """``now`` if sending now is lawful; else the first later minute that is; None if none within ``horizon``.

    Args:
        now: an aware datetime (any zone).
        zones: candidate IANA zones of the recipient (at least one).
        states: candidate USPS state codes (state rules beyond the federal window).
        end_margin: treat each window as ending this much earlier (room for provider queueing).
        horizon: how far ahead to look; zones too far apart can have no common window at all.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone_list = sorted(set(zones))
    if not zone_list:
        raise ValueError("at least one candidate time zone is needed")
    start = now.astimezone(UTC)
    states = tuple(sorted(set(states)))
    # Almost always the answer is within a day or two: look there first, then the whole horizon.
    spans = (min(timedelta(days=2), horizon), horizon) if horizon > timedelta(days=2) else (horizon,)
    for span in spans:
        found = _first_common(now, start, start + span, zone_list, states, end_margin)
        if found is not None:
            return found
    return None


def _first_common(
    now: datetime,
    start: datetime,
    end: datetime,
    zones: Sequence[str],
    states: tuple[str, ...],
    end_margin: timedelta,
) -> datetime | None:
    common: list[Interval] | None = None
    for zone in zones:
        intervals = lawful_intervals(zone, states, start, end, end_margin=end_margin)
        common = intervals if common is None else _intersect(common, intervals)
        if not common:
            return None
    assert common is not None
    for s, e in common:
        if s <= start < e:
            return now
        candidate = _ceil_minute(s)
        if candidate < e:
            return candidate
    return None


def is_lawful(
    now: datetime, zones: Iterable[str], states: Iterable[str] = (), *, end_margin: timedelta = timedelta(0)
) -> bool:
    """True when ``now`` is inside the window in every candidate zone."""
    return next_lawful_minute(now, zones, states, end_margin=end_margin, horizon=timedelta(days=1)) == now
