"""What people type, read into values: ids and times, refused with InvalidInput naming the field.

The CLI and the admin API share these, so "not an id" reads the same wherever it is typed,
and neither has to catch ``ValueError`` itself (which could hide a bug).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, tzinfo

from worker.errors import InvalidInput

__all__ = ["parse_date", "parse_id", "parse_time"]


def parse_id(value: str, *, what: str, field: str = "id", hint: str = "") -> uuid.UUID:
    """A UUID, or InvalidInput saying it is not ``what`` (e.g. "a review item id")."""
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not {what}{hint}", field=field) from None


def parse_time(value: str, *, field: str, example: str, default_zone: tzinfo | None = None) -> datetime:
    """An ISO-8601 time with an offset; without one, ``default_zone`` applies or it is refused.

    ``Z`` is accepted for UTC. ``example`` goes into the message, so the person sees a
    spelling that works for this option.
    """
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} {value!r} is not an ISO time: ISO-8601, e.g. {example}", field=field) from None
    if parsed.tzinfo is None:
        if default_zone is None:
            raise InvalidInput(f"{field} needs a UTC offset (e.g. {example})", field=field)
        parsed = parsed.replace(tzinfo=default_zone)
    return parsed


def parse_date(value: str, *, field: str) -> date:
    """A calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{field} {value!r} is not a date (YYYY-MM-DD)", field=field.lstrip("-")) from None
