"""compliance.business_days: the FCC's 10 business days, weekends and federal holidays excluded."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from compliance.business_days import add_business_days, business_days_between, deadline_after, is_business_day

NY = "America/New_York"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 11, 27), False),  # Thanksgiving
        (date(2025, 12, 25), False),  # Christmas
        (date(2026, 1, 1), False),  # New Year's Day
        (date(2026, 1, 19), False),  # Martin Luther King Jr. Day
        (date(2026, 7, 3), False),  # Independence Day observed (07-04 is a Saturday)
        (date(2025, 11, 29), False),  # Saturday
        (date(2025, 11, 30), False),  # Sunday
        (date(2025, 11, 28), True),  # the Friday after Thanksgiving is not federal
        (date(2025, 12, 24), True),  # Christmas Eve is not federal
    ],
)
def test_is_business_day(day: date, expected: bool) -> None:
    """Weekdays count unless they are (observed) US federal holidays."""
    assert is_business_day(day) is expected


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # Friday before Thanksgiving week: Thu 11-27 skipped -> Mon 12-08.
        (date(2025, 11, 21), 10, date(2025, 12, 8)),
        # Across Christmas and New Year: Thu 12-25 and Thu 01-01 skipped.
        (date(2025, 12, 19), 10, date(2026, 1, 6)),
        # Received on a Saturday: counting starts Monday.
        (date(2025, 12, 20), 10, date(2026, 1, 6)),
        # Received on a holiday itself.
        (date(2025, 12, 25), 1, date(2025, 12, 26)),
        (date(2026, 3, 2), 0, date(2026, 3, 2)),
        # A plain fortnight with no holiday.
        (date(2026, 3, 2), 10, date(2026, 3, 16)),
    ],
)
def test_add_business_days(start: date, n: int, expected: date) -> None:
    """The nth business day after start skips weekends and federal holidays."""
    assert add_business_days(start, n) == expected


def test_negative_days_refused() -> None:
    """A negative count is a bug, not a date in the past."""
    with pytest.raises(ValueError, match=">= 0"):
        add_business_days(date(2026, 3, 2), -1)


def test_deadline_keeps_local_wall_clock_across_thanksgiving() -> None:
    """A message at 15:00 New York time on 2025-11-21 is due at 15:00 New York time on 2025-12-08."""
    received = datetime(2025, 11, 21, 20, 0, tzinfo=UTC)  # 15:00 EST
    deadline = deadline_after(received, 10, NY)
    assert deadline == datetime(2025, 12, 8, 15, 0, tzinfo=ZoneInfo(NY))


def test_deadline_uses_the_stations_local_date() -> None:
    """23:30 Friday in Los Angeles is already Saturday in UTC; the local date (Friday) is day 0."""
    received = datetime(2025, 12, 20, 7, 30, tzinfo=UTC)  # Fri 2025-12-19 23:30 PST
    deadline = deadline_after(received, 10, "America/Los_Angeles")
    assert deadline.date() == date(2026, 1, 6)
    assert deadline.astimezone(ZoneInfo("America/Los_Angeles")).hour == 23


def test_deadline_refuses_naive_time() -> None:
    """An unzoned receipt time is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_after(datetime(2025, 11, 21, 15, 0), 10, NY)


@freeze_time("2025-12-22 14:00:00", tz_offset=0)
def test_deadline_from_frozen_now_across_christmas_and_new_year() -> None:
    """With the clock frozen on Monday 2025-12-22, ten business days land on Wednesday 2026-01-07."""
    now = datetime.now(UTC)
    deadline = deadline_after(now, 10, NY)
    # Tue 23, Wed 24, (Thu 25 holiday), Fri 26, Mon 29, Tue 30, Wed 31, (Thu 01 holiday), Fri 02,
    # Mon 05, Tue 06, Wed 07.
    assert deadline.date() == date(2026, 1, 7)
    assert business_days_between(now, deadline, NY) == 10


def test_business_days_between() -> None:
    """Counting business days left ignores the start date and holidays, and is 0 for the past."""
    start = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)  # Wednesday before Thanksgiving
    assert business_days_between(start, datetime(2025, 11, 28, 12, 0, tzinfo=UTC), NY) == 1
    assert business_days_between(start, start, NY) == 0
    assert business_days_between(start, datetime(2025, 11, 20, tzinfo=UTC), NY) == 0
