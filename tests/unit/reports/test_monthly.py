"""The monthly report's month and schedule: the previous calendar month in UTC, on the 1st at 00:30 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from celery.schedules import crontab

import celeryconfig
from worker.beat import BEAT_SCHEDULE
from worker.reports.monthly import Month, previous_month


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (datetime(2026, 12, 1, 0, 30, tzinfo=UTC), Month(date(2026, 11, 1), date(2026, 11, 30))),
        (datetime(2027, 1, 1, 0, 30, tzinfo=UTC), Month(date(2026, 12, 1), date(2026, 12, 31))),
        (datetime(2028, 3, 1, 0, 30, tzinfo=UTC), Month(date(2028, 2, 1), date(2028, 2, 29))),
        # 20:00 on Nov 30 in New York is already Dec 1 in UTC: the month is November.
        (datetime(2026, 11, 30, 20, 0, tzinfo=timezone(timedelta(hours=-5))), Month(date(2026, 11, 1),
                                                                                      date(2026, 11, 30))),
    ],
)
def test_previous_month_in_utc(now: datetime, month: Month) -> None:
    """The month before now's month, counted in UTC, leap years included."""
    assert previous_month(now) == month


def test_naive_time_is_refused_and_file_name() -> None:
    """A naive time cannot say which UTC day it is; the file is named for the month."""
    with pytest.raises(ValueError, match="timezone-aware"):
        previous_month(datetime(2026, 12, 1))
    assert Month(date(2026, 11, 1), date(2026, 11, 30)).file_name() == "opt-outs-2026-11.zip"


def test_beat_runs_it_on_the_first_at_0030_utc() -> None:
    """The beat entry is a crontab for day 1, 00:30, and beat's clock is UTC."""
    entry = BEAT_SCHEDULE["monthly-opt-out-report"]
    schedule = entry["schedule"]
    assert entry["task"] == "tasks.reports.monthly_opt_out_report"
    assert isinstance(schedule, crontab)
    assert (schedule.day_of_month, schedule.hour, schedule.minute) == ({1}, {0}, {30})
    assert (celeryconfig.timezone, celeryconfig.enable_utc) == ("UTC", True)
