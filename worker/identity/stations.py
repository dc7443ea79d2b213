"""Stations (franchise locations): operator set-up, validated before anything is stored.

Bad input is refused with a StationError whose message an operator can act on; every
creation writes an audit row in the same transaction.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.errors import ErrorKind, UserError
from worker.models import AuditAction, Station, StationSender

__all__ = [
    "StationError",
    "create_station",
    "find_station",
    "help_text_warnings",
    "list_stations",
    "validate_code",
    "validate_timezone",
]

CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


class StationError(UserError):
    """Raised when operator input for a station or sender cannot be stored (message says why)."""


def validate_code(code: str) -> str:
    value = code.strip()
    if not CODE_RE.fullmatch(value):
        raise StationError(
            f"station code {code!r} is not valid: use 1-32 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


def validate_timezone(tz: str) -> str:
    """An IANA zone name that this machine's zone database knows (quiet hours depend on it)."""
    value = tz.strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = ""
        close = difflib.get_close_matches(value, zoneinfo.available_timezones(), n=1, cutoff=0.6)
        if not close:
            lowered = {z.lower(): z for z in zoneinfo.available_timezones()}
            close = [lowered[value.lower()]] if value.lower() in lowered else []
        if close:
            hint = f" (did you mean {close[0]}?)"
        raise StationError(f"unknown time zone {tz!r}{hint}: use an IANA name such as America/New_York") from None
    return value


def _station_values(station: Station) -> dict[str, Any]:
    return {
        "code": station.code,
        "name": station.name,
        "timezone": station.timezone,
        "brand_name": station.brand_name,
        "help_text": station.help_text,
        "contact": station.contact,
    }


def create_station(
    session: Session,
    *,
    code: str,
    name: str,
    timezone: str,
    brand: str,
    help_text: str | None = None,
    contact: str | None = None,
    actor: Actor,
) -> Station:
    """Insert a station and its audit row; StationError for bad input or a taken code."""
    code = validate_code(code)
    timezone = validate_timezone(timezone)
    name, brand = name.strip(), brand.strip()
    if not name or len(name) > 200:
        raise StationError("station name must be 1-200 characters")
    if not brand or len(brand) > 200:
        raise StationError("brand must be 1-200 characters (it appears in HELP and opt-out replies)")
    if help_text is not None and not help_text.strip():
        raise StationError("help text, when given, must not be empty")
    if session.scalar(select(Station.id).where(func.lower(Station.code) == code.lower())) is not None:
        raise StationError(
            f"a station with code {code!r} already exists (codes are unique, ignoring case)",
            kind=ErrorKind.CONFLICT,
        )
    station = Station(
        code=code,
        name=name,
        timezone=timezone,
        brand_name=brand,
        help_text=help_text.strip() if help_text else None,
        contact=contact.strip() if contact else None,
    )
    try:
        with session.begin_nested():
            session.add(station)
            session.flush()
    except IntegrityError:  # a concurrent add of the same code won the race
        raise StationError(f"a station with code {code!r} already exists", kind=ErrorKind.CONFLICT) from None
    audit.record(
        session,
        actor,
        action=AuditAction.CREATE,
        resource_type="station",
        resource_id=station.id,
        station_id=station.id,
        new_values=_station_values(station),
    )
    return station


def help_text_warnings(brand: str, help_text: str | None) -> list[str]:
    """CTIA wants the HELP reply to name the brand and say how to opt out; warn, do not refuse."""
    if help_text is None:
        return ["no --help-text: HELP replies use the built-in text with the brand name"]
    warnings = []
    if brand.strip().lower() not in help_text.lower():
        warnings.append("help text does not name the brand (CTIA: the HELP reply identifies the sender)")
    if "stop" not in help_text.lower():
        warnings.append("help text does not say how to opt out (CTIA: include 'Reply STOP to opt out')")
    return warnings


def list_stations(session: Session) -> list[tuple[Station, int]]:
    """Live stations by code, each with its number of active senders."""
    senders = (
        select(StationSender.station_id, func.count().label("n"))
        .where(StationSender.is_active.is_(True))
        .group_by(StationSender.station_id)
        .subquery()
    )
    rows = session.execute(
        select(Station, func.coalesce(senders.c.n, 0))
        .outerjoin(senders, senders.c.station_id == Station.id)
        .where(Station.deleted_at.is_(None))
        .order_by(Station.code)
    ).all()
    return [(station, int(n)) for station, n in rows]


def find_station(session: Session, code: str) -> Station:
    station = session.scalar(
        select(Station).where(func.lower(Station.code) == code.strip().lower(), Station.deleted_at.is_(None))
    )
    if station is None:
        raise StationError(
            f"no station with code {code!r}: create it with `msgworker station add` first",
            kind=ErrorKind.NOT_FOUND,
        )
    return station
