"""When a campaign fires: pure fire-time arithmetic in UTC, wall-clock rules in zoneinfo.

A campaign's schedule is one of (docs/campaigns.md, "Schedules"):

- ``once``: one instant.
- ``recurring``: an RFC 5545 RRULE (python-dateutil) over a first local date and time in the
  station's zone. Occurrences are computed as local wall-clock times and only then turned into
  UTC, so "every Friday at 10:00" stays 10:00 across a DST change.
- ``local``: "at HH:MM in the recipient's local time" on a date; each recipient gets their own
  instant (``local_fire_at``).
- ``relative``: an anchor (a completed booking) plus a delay, by default the next day at 11:00 in
  the recipient's local time (``after_anchor``).

Campaigns recur at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY): a marketing text more
often than daily would run into the frequency cap anyway, and it keeps the search for the
next occurrence bounded. An RRULE with no occurrence after now (COUNT used up, UNTIL past,
BYMONTHDAY=30 in February) is refused when the campaign is created, as is any fire time
already in the past.

A local time that does not exist (02:30 on the day clocks spring forward) moves forward by
the gap; an ambiguous one (01:30 on the day they fall back) is the first of the two.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from compliance.errors import ComplianceError

__all__ = [
    "ScheduleError",
    "after_anchor",
    "at_local",
    "local_fire_at",
    "next_occurrence",
    "parse_hhmm",
    "run_key",
    "same_wall_clock_later",
    "validate_rrule",
]

_ALLOWED_FREQ = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
# How far ahead an RRULE's next occurrence is looked for: a rule with nothing in this span is
# treated as never firing (and refused at creation).
_HORIZON = timedelta(days=366 * 5)
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class ScheduleError(ComplianceError, ValueError):
    """Raised when a schedule cannot fire as written (past, never, malformed); the message says why."""


def parse_hhmm(value: str) -> time:
    """``"11:00"`` as a time; ScheduleError otherwise."""
    match = _HHMM.fullmatch(value.strip())
    if not match:
        raise ScheduleError(f"{value!r} is not a time of day HH:MM (24-hour, e.g. 11:00)")
    return time(int(match.group(1)), int(match.group(2)))


def at_local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``day`` ``at`` on the wall clock of ``zone``, DST-safe (module docstring)."""
    # PEP 495: fold=0 reads a time inside a spring-forward gap with the offset from before the
    # change, which lands it the gap's length later on the wall clock (02:30 -> 03:30), and an
    # ambiguous fall-back time as its first occurrence.
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


def _rule(text: str, first_local: datetime, zone: ZoneInfo) -> rrule:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    # Occurrences are wall-clock times (naive), so a UTC UNTIL is read on the same wall clock.
    body = _UNTIL_UTC.sub(
        lambda m: "UNTIL=" + datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        .astimezone(zone).strftime("%Y%m%dT%H%M%S"), body)
    if "DTSTART" in body.upper():
        raise ScheduleError("give the first date and time with --at, not DTSTART inside the RRULE")
    try:
        parsed = rrulestr(body, dtstart=first_local.replace(tzinfo=None), forceset=False)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"RRULE {text!r} is not valid RFC 5545: {exc}") from None
    if not isinstance(parsed, rrule):
        raise ScheduleError(f"RRULE {text!r} must be a single rule")
    freq = re.search(r"FREQ=([A-Z]+)", body.upper())
    if freq is None or freq.group(1) not in _ALLOWED_FREQ:
        raise ScheduleError("campaigns recur at most daily: use FREQ=DAILY, WEEKLY, MONTHLY or YEARLY")
    return parsed


def next_occurrence(rule_text: str, first_local: datetime, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first occurrence strictly after ``after`` (UTC), or None when the rule has ended.

    ``first_local`` is the first occurrence as a naive or zone-local wall-clock time.
    """
    rule = _rule(rule_text, first_local, zone)
    local_after = after.astimezone(zone).replace(tzinfo=None)
    # Step back a day so a wall-clock occurrence made later by a DST gap is not skipped.
    cursor = local_after - timedelta(days=1)
    limit = local_after + _HORIZON
    while True:
        found = rule.after(cursor, inc=False)
        if found is None or found > limit:
            return None
        instant = at_local(found.date(), found.time(), zone)
        if instant > after:
            return instant
        cursor = found


def validate_rrule(rule_text: str, first_local: datetime, zone: ZoneInfo, now: datetime) -> datetime:
    """The first fire time not before ``now``; ScheduleError if the rule never fires again."""
    first = at_local(first_local.date(), first_local.time().replace(tzinfo=None), zone)
    if first >= now:
        # The first occurrence counts only if the rule itself yields it (COUNT=0, BYDAY=...).
        rule = _rule(rule_text, first_local, zone)
        if rule.after(first_local.replace(tzinfo=None), inc=True) == first_local.replace(tzinfo=None):
            return first
    found = next_occurrence(rule_text, first_local, zone, now - timedelta(microseconds=1))
    if found is None:
        raise ScheduleError(f"RRULE {rule_text!r} never fires after {now.isoformat()}: nothing would be sent")
    return found


def local_fire_at(
    day: date, at: time, zones: tuple[str, ...], now: datetime, *, passed: str = "next_day"
) -> datetime | None:
    """A recipient's instant for "``at`` on ``day`` in their local time"; None when it passed and
    the policy is ``skip``.

    With several candidate zones (an area code spanning two), the latest instant is taken, so
    nobody gets the text before ``at`` on their own clock. A time already past goes to the next
    day at the same wall-clock time (``passed="next_day"``), never "now".
    """
    if not zones:
        raise ScheduleError("a local-time send needs at least one zone")
    candidate = max(at_local(day, at, ZoneInfo(z)) for z in zones)
    if candidate > now:
        return candidate
    if passed == "skip":
        return None
    next_day = day + timedelta(days=1)
    while True:
        candidate = max(at_local(next_day, at, ZoneInfo(z)) for z in zones)
        if candidate > now:
            return candidate
        next_day += timedelta(days=1)


def after_anchor(
    anchor: datetime, zones: tuple[str, ...], *, next_day_at: time | None = None, after: timedelta | None = None
) -> datetime:
    """When a step relative to ``anchor`` fires: ``after`` it, or the next local day at ``next_day_at``."""
    if after is not None:
        return anchor + after
    at = next_day_at or time(11, 0)
    return max(at_local(anchor.astimezone(ZoneInfo(z)).date() + timedelta(days=1), at, ZoneInfo(z)) for z in zones)


def same_wall_clock_later(instant: datetime, days: int, zone: ZoneInfo) -> datetime:
    """``days`` later at the same local wall-clock time in ``zone`` (a reminder after 3 days)."""
    local = instant.astimezone(zone)
    return at_local(local.date() + timedelta(days=days), local.time().replace(tzinfo=None), zone)


def run_key(fire_at: datetime) -> str:
    """The run key of one occurrence: its UTC instant, compact ("20261207T150000Z")."""
    return fire_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
