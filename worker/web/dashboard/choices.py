"""What a page's filters mean: the stations the viewer can pick and the date range, read or refused in words.

The stations offered are those the request's transaction returns (row-level security): a
station manager is offered theirs and no other; a code they type by hand that the database
does not return is "not found", exactly as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from compliance.report_rules import DEFAULT_TIMEZONE
from worker.errors import InvalidInput, NotFound
from worker.models import Station

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "Choice", "choose", "codes", "date_range", "visible_stations"]

DEFAULT_DAYS = 30
MAX_DAYS = 400


@dataclass(frozen=True, slots=True)
class Choice:
    visible: list[Station]
    # None: every station the viewer sees (only for a role that sees every station).
    chosen: list[Station] | None
    code: str

    @property
    def zone(self) -> str:
        """The zone times are shown in: the one station's, else the business's fallback."""
        stations = self.chosen if self.chosen is not None else self.visible
        return stations[0].timezone if len(stations) == 1 else DEFAULT_TIMEZONE

    def zone_of(self) -> dict[object, str]:
        """Station zones by id, as a UUID or as text (templates hold both)."""
        return {key: s.timezone for s in self.visible for key in (s.id, str(s.id))}


def visible_stations(session: Session) -> list[Station]:
    return list(session.execute(select(Station).where(Station.deleted_at.is_(None)).order_by(Station.code)).scalars())


def choose(session: Session, code: str | None, *, sees_all: bool) -> Choice:
    """The station picked by ``code`` (blank: all the viewer's), among those the database returns."""
    visible = visible_stations(session)
    wanted = (code or "").strip().upper()
    if wanted:
        found = [s for s in visible if s.code.upper() == wanted]
        if not found:
            raise NotFound(f"There is no station {wanted!r} that you can see. Pick one from the list.",
                           field="station")
        return Choice(visible, found, found[0].code)
    return Choice(visible, None if sees_all else visible, "")


def _day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"The {name} date {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-01.",
                           field=name) from None


def date_range(start: str | None, end: str | None, *, days: int = DEFAULT_DAYS) -> tuple[date, date]:
    """UTC days, both inclusive: the last ``days`` up to today unless given."""
    today = datetime.now(UTC).date()
    last = _day(end, "to", today)
    first = _day(start, "from", last - timedelta(days=days - 1))
    if first > last:
        raise InvalidInput(f"The range is reversed: from {first} is after to {last}.", field="from")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"The range is over {MAX_DAYS} days; pick a shorter one (or export a report).",
                           field="from")
    return first, last


def codes(stations: Sequence[Station]) -> dict[object, str]:
    """Station codes by id, as a UUID or as text (templates hold both)."""
    return {key: s.code for s in stations for key in (s.id, str(s.id))}
