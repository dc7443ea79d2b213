"""Fire times: RRULEs in local wall-clock time across DST, per-recipient local times, past and never-firing rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from compliance.campaign_schedule import (
    ScheduleError,
    after_anchor,
    at_local,
    local_fire_at,
    next_occurrence,
    same_wall_clock_later,
    validate_rrule,
)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


@freeze_time("2026-03-01 12:00:00+00:00")
def test_a_weekly_rule_fires_at_the_same_local_time_across_the_spring_dst_change() -> None:
    """Sundays 10:00 New York: 15:00 UTC before 8 March, 14:00 UTC after it, 10:00 on the wall clock both times."""
    now = datetime.now(UTC)
    first = validate_rrule("FREQ=WEEKLY;BYDAY=SU", datetime(2026, 3, 1, 10, 0), NY, now)
    fires = [first]
    for _ in range(2):
        fires.append(next_occurrence("FREQ=WEEKLY;BYDAY=SU", datetime(2026, 3, 1, 10, 0), NY, fires[-1]))  # type: ignore[arg-type]
    assert [f.astimezone(UTC).hour for f in fires] == [15, 14, 14]
    assert {f.astimezone(NY).time() for f in fires} == {time(10, 0)}


@freeze_time("2026-10-30 12:00:00+00:00")
def test_a_local_time_send_across_the_fall_dst_change_keeps_the_wall_clock() -> None:
    """10:00 on the recipient's clock on 31 Oct and on 1 Nov (the fall-back day) are 14:00 and 15:00 UTC."""
    now = datetime.now(UTC)
    before = local_fire_at(date(2026, 10, 31), time(10), ("America/New_York",), now)
    after = local_fire_at(date(2026, 11, 1), time(10), ("America/New_York",), now)
    assert before is not None
    assert after is not None
    assert (before.astimezone(UTC).hour, after.astimezone(UTC).hour) == (14, 15)
    assert before.astimezone(NY).time() == after.astimezone(NY).time() == time(10)


@freeze_time("2026-12-07 16:30:00+00:00")
def test_a_recipient_already_past_the_local_time_goes_next_day_or_is_skipped() -> None:
    """11:00 today has passed in New York (11:30) but not in Los Angeles: NY goes tomorrow (or skip), LA today."""
    now = datetime.now(UTC)
    ny = local_fire_at(date(2026, 12, 7), time(11), ("America/New_York",), now)
    la = local_fire_at(date(2026, 12, 7), time(11), ("America/Los_Angeles",), now)
    assert ny == datetime(2026, 12, 8, 16, 0, tzinfo=UTC)
    assert la == datetime(2026, 12, 7, 19, 0, tzinfo=UTC)
    assert local_fire_at(date(2026, 12, 7), time(11), ("America/New_York",), now, passed="skip") is None


def test_several_candidate_zones_take_the_latest_instant() -> None:
    """A number that could be in New York or Chicago gets 10:00 Chicago, so nobody gets it before 10:00."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    fire = local_fire_at(date(2026, 12, 7), time(10), ("America/New_York", "America/Chicago"), now)
    assert fire == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def test_a_time_inside_the_spring_gap_moves_forward_by_the_gap() -> None:
    """02:30 on 8 March 2026 does not exist in New York: it fires at 03:30 EDT."""
    assert at_local(date(2026, 3, 8), time(2, 30), NY).astimezone(NY).time() == time(3, 30)


@pytest.mark.parametrize(("rule", "first", "why"), [
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 3, 2, 10), "never fires"),
    ("FREQ=DAILY;COUNT=2", datetime(2026, 1, 1, 10), "never fires"),
    ("FREQ=DAILY;UNTIL=20260101T000000Z", datetime(2025, 12, 1, 10), "never fires"),
    ("FREQ=HOURLY", datetime(2026, 3, 2, 10), "at most daily"),
    ("FREQ=WEEKLY;BYDAY=XX", datetime(2026, 3, 2, 10), "not valid"),
    ("DTSTART:20260101T000000\nRRULE:FREQ=DAILY", datetime(2026, 3, 2, 10), "DTSTART"),
])
def test_a_rule_that_never_fires_or_cannot_be_read_is_refused(rule: str, first: datetime, why: str) -> None:
    """An RRULE with nothing ahead, recurring more than daily, or malformed, is refused with the reason."""
    with pytest.raises(ScheduleError, match=why):
        validate_rrule(rule, first, NY, datetime(2026, 3, 1, 12, tzinfo=UTC))


def test_the_review_request_default_is_the_next_day_at_11_local_and_the_reminder_three_days_later() -> None:
    """Completed 21:00 in Los Angeles: the request goes 11:00 LA next day, the reminder 11:00 LA three days on."""
    completed = datetime(2026, 3, 6, 21, 0, tzinfo=LA)
    request = after_anchor(completed, ("America/Los_Angeles",), next_day_at=time(11))
    assert request.astimezone(LA) == datetime(2026, 3, 7, 11, 0, tzinfo=LA)
    reminder = same_wall_clock_later(request, 3, LA)  # crosses the 8 March DST change
    assert reminder.astimezone(LA).replace(tzinfo=None) == datetime(2026, 3, 10, 11, 0)
    assert reminder - request == timedelta(days=3) - timedelta(hours=1)
