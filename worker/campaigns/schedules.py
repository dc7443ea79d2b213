"""A campaign's schedule: read from what the marketer typed, stored as JSON, turned into fire times.

The pure arithmetic (RRULE, DST, local time per recipient) is compliance/campaign_schedule.py;
this module owns the stored shape (``marketing.campaigns.schedule``) and its refusals:

- ``{"type": "once", "at": ISO}``
- ``{"type": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=FR", "first": "2026-12-11T10:00", "zone": IANA}``
- ``{"type": "local", "on": "2026-12-08", "at": "10:00"}`` (each recipient's own clock)
- ``{"type": "relative", "next_day_at": "11:00"}`` or ``{"type": "relative", "after_seconds": N}``
  (review requests: after the booking was completed)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from compliance.campaign_schedule import (
    ScheduleError,
    after_anchor,
    next_occurrence,
    parse_hhmm,
    validate_rrule,
)
from worker.campaigns.errors import CampaignError
from worker.errors import ErrorKind

__all__ = ["ScheduleInput", "build", "first_fire", "next_fire", "relative_due"]


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    """What was typed (CLI options); at most one of the shapes."""

    at: datetime | None = None
    rrule: str | None = None
    local_time: str | None = None
    on: date | None = None
    next_day_at: str | None = None
    after: timedelta | None = None


def _refuse(message: str, field: str) -> CampaignError:
    return CampaignError(message, kind=ErrorKind.INVALID_INPUT, field=field)


def build(kind: str, given: ScheduleInput, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """The stored schedule, checked: a time in the past or an RRULE that never fires is refused."""
    try:
        if kind == "review_request":
            if given.at or given.rrule or given.local_time:
                raise _refuse("a review request is sent after each completed booking: use --next-day-at or --after",
                              "schedule")
            if given.after is not None:
                if given.after <= timedelta(0):
                    raise _refuse("--after must be positive", "after")
                return {"type": "relative", "after_seconds": int(given.after.total_seconds())}
            return {"type": "relative", "next_day_at": parse_hhmm(given.next_day_at or "11:00").strftime("%H:%M")}
        if given.local_time is not None:
            if given.on is None:
                raise _refuse("--local-time needs --on DATE (the day, in each recipient's own zone)", "on")
            at = parse_hhmm(given.local_time)
            # Past everywhere already (UTC-12 is the last clock to reach a time): refused.
            if datetime.combine(given.on, at).replace(tzinfo=ZoneInfo("Etc/GMT+12")) <= now:
                raise _refuse(f"{given.on} {at:%H:%M} has passed in every time zone", "on")
            return {"type": "local", "on": given.on.isoformat(), "at": at.strftime("%H:%M")}
        if given.at is None:
            raise _refuse("give --at (once, or the first time of --rrule) or --local-time with --on", "at")
        if given.rrule is not None:
            first_local = given.at.astimezone(zone).replace(tzinfo=None)
            validate_rrule(given.rrule, first_local, zone, now)
            return {"type": "recurring", "rrule": given.rrule.strip(), "first": first_local.isoformat(),
                    "zone": zone.key}
        if given.at <= now:
            raise _refuse(f"--at {given.at.isoformat()} is in the past: nothing would be sent", "at")
        return {"type": "once", "at": given.at.isoformat()}
    except ScheduleError as exc:
        raise _refuse(str(exc), "schedule") from None


def first_fire(schedule: dict[str, Any], now: datetime) -> datetime:
    """When the first run fires, at start: the stored instant, or now for local and relative schedules
    (their recipients get their own instants)."""
    kind = schedule["type"]
    if kind == "once":
        at = datetime.fromisoformat(schedule["at"])
        if at <= now:
            raise CampaignError(f"its time {at.isoformat()} has passed: edit the schedule or create a new campaign",
                                kind=ErrorKind.CONFLICT)
        return at
    if kind == "recurring":
        zone = ZoneInfo(schedule["zone"])
        try:
            return validate_rrule(schedule["rrule"], datetime.fromisoformat(schedule["first"]), zone, now)
        except ScheduleError as exc:
            raise CampaignError(str(exc), kind=ErrorKind.CONFLICT) from None
    return now


def next_fire(schedule: dict[str, Any], after: datetime) -> datetime | None:
    """The fire time after ``after`` (None when there is no more: once, local, an ended RRULE)."""
    if schedule["type"] != "recurring":
        return None
    return next_occurrence(schedule["rrule"], datetime.fromisoformat(schedule["first"]), ZoneInfo(schedule["zone"]),
                           after)


def relative_due(schedule: dict[str, Any], anchor: datetime, zones: tuple[str, ...]) -> datetime:
    """When a review request for a booking completed at ``anchor`` goes, in the recipient's zones."""
    if "after_seconds" in schedule:
        return after_anchor(anchor, zones, after=timedelta(seconds=int(schedule["after_seconds"])))
    at: time = parse_hhmm(schedule.get("next_day_at", "11:00"))
    return after_anchor(anchor, zones, next_day_at=at)
