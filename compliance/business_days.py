"""Business days for the FCC's 10-business-day revocation limit
(docs/compliance.md#honouring-within-10-business-days).

FCC 24-24 (47 CFR 64.1200(a)(10)): a revocation must be honoured within a reasonable
time, not more than 10 business days after receipt; weekends and federal holidays do
not count. The review queue's deadline is computed here, as a pure function of the
receipt instant, the station's time zone and the US federal holiday calendar
(``holidays.country_holidays("US")``: federal, observed days included: a Saturday holiday is observed on the Friday).

Counting: the day of receipt is day 0 whatever it is; each following weekday that is not
a federal holiday counts one. The deadline is the receipt's local wall-clock time on the
Nth such day. Example: received Friday 2025-11-21 at 15:00 New York time; Thanksgiving
(Thursday 11-27) does not count; the deadline is Monday 2025-12-08 at 15:00 New York time.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

__all__ = ["add_business_days", "business_days_between", "deadline_after", "is_business_day", "preload"]


@functools.lru_cache(maxsize=64)
def _federal_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("US", years=year).keys())


def preload(today: date) -> None:
    """Load the holiday calendars a deadline from ``today`` can reach (this year and the next).

    ``holidays`` imports its country modules on the first lookup (~0.15 s of CPU); a Celery
    main process calls this before its pool forks (worker/app.py), so the children share the
    imports and the cached years instead of each paying for them in its first review.
    """
    _federal_holidays(today.year)
    _federal_holidays(today.year + 1)


def is_business_day(day: date) -> bool:
    """Monday to Friday and not a US federal holiday (observed)."""
    return day.weekday() < 5 and day not in _federal_holidays(day.year)


def add_business_days(start: date, n: int) -> date:
    """The nth business day after ``start`` (``start`` itself never counts)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    day = start
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_business_day(day):
            counted += 1
    return day


def deadline_after(received_at: datetime, n: int, tz: str) -> datetime:
    """The instant ``n`` business days after ``received_at``, counted in zone ``tz``.

    The result is timezone-aware (in ``tz``); compare it with aware datetimes only.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    zone = ZoneInfo(tz)
    local = received_at.astimezone(zone)
    day = add_business_days(local.date(), n)
    wall = time(local.hour, local.minute, local.second, local.microsecond)
    # fold=0 and ZoneInfo resolve a DST gap/overlap deterministically.
    return datetime.combine(day, wall, tzinfo=zone)


def business_days_between(start: datetime, end: datetime, tz: str) -> int:
    """Business days strictly after start's local date up to and including end's (0 if none).

    Used to tell how close a review item is to its deadline.
    """
    zone = ZoneInfo(tz)
    a = start.astimezone(zone).date()
    b = end.astimezone(zone).date()
    if b <= a:
        return 0
    count = 0
    day = a
    while day < b:
        day += timedelta(days=1)
        if is_business_day(day):
            count += 1
    return count
