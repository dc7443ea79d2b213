"""Reading compliance.consent_state: the rows that cover a send, merged.

The send gate's lookup is :func:`covering_state`: one indexed query for the number's
business-wide row and its station's row (unique index on (phone_index, station_id)),
merged by compliance.consent_rules.combine. Take worker.locks.lock_number first when the
answer decides a send, so a consent change cannot commit between the read and the send
decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from compliance.consent_rules import ConsentSnapshot, EffectiveConsent, combine
from worker.db import driver_connection
from worker.models import ConsentState

__all__ = [
    "COVERING_SQL",
    "SNAPSHOT_FIELDS",
    "STATE_ROWS_SQL",
    "StateRows",
    "covering",
    "covering_rows",
    "covering_state",
    "parse_state_rows",
    "snapshot_of",
    "state_rows",
]

SNAPSHOT_FIELDS: tuple[str, ...] = tuple(ConsentSnapshot.__dataclass_fields__)

def snapshot_of(row: ConsentState | Mapping[str, Any] | RowMapping) -> ConsentSnapshot:
    """A state row (ORM object or mapping) as the pure projection's snapshot."""
    if isinstance(row, ConsentState):
        return ConsentSnapshot(**{name: getattr(row, name) for name in SNAPSHOT_FIELDS})
    return ConsentSnapshot(**{name: row[name] for name in SNAPSHOT_FIELDS})


# The lookup, as plain SQL run on the session's psycopg connection and prepared, because it is
# on the consent and send paths' critical path and SQLAlchemy's per-execution work cost more
# than the indexed query itself (bench/consent.py); served by the unique index on
# (phone_index, station_id).
_FIELDS_SQL = ", ".join(SNAPSHOT_FIELDS)  # fixed column names; values are bound parameters
COVERING_SQL = (
    f"SELECT station_id, {_FIELDS_SQL} FROM compliance.consent_state "  # noqa: S608
    "WHERE phone_index = %(phone_index)s AND (station_id IS NULL OR station_id = %(station_id)s)"
)


def covering_rows(
    session: Session, phone_index: bytes, station_id: uuid.UUID | None
) -> tuple[ConsentSnapshot | None, ConsentSnapshot | None]:
    """(business row, station row) for the number; None where no row exists."""
    business: ConsentSnapshot | None = None
    station: ConsentSnapshot | None = None
    cursor = driver_connection(session).execute(
        COVERING_SQL, {"phone_index": phone_index, "station_id": station_id}, prepare=True
    )
    for row in cursor:
        snap = ConsentSnapshot(*row[1:])
        if row[0] is None:
            business = snap
        else:
            station = snap
    return business, station


def covering_state(session: Session, phone_index: bytes, station_id: uuid.UUID | None) -> EffectiveConsent:
    """The consent that covers a send to this number from this station."""
    business, station = covering_rows(session, phone_index, station_id)
    return combine(business, station)


# A number's state rows by scope (None: the business-wide row).
StateRows = Mapping[uuid.UUID | None, ConsentSnapshot]

# Every state row of some numbers (parameter ``indexes``), for state_rows and parse_state_rows.
STATE_ROWS_SQL = (
    f"SELECT phone_index, station_id, {_FIELDS_SQL} FROM compliance.consent_state "  # noqa: S608
    "WHERE phone_index = ANY(%(indexes)s)"
)


def parse_state_rows(rows: Iterable[Sequence[Any]]) -> dict[bytes, dict[uuid.UUID | None, ConsentSnapshot]]:
    """STATE_ROWS_SQL's rows as {blind index: {scope: snapshot}} (a number with no row is absent)."""
    out: dict[bytes, dict[uuid.UUID | None, ConsentSnapshot]] = {}
    for row in rows:
        out.setdefault(bytes(row[0]), {})[row[1]] = ConsentSnapshot(*row[2:])
    return out


def state_rows(
    session: Session, phone_indexes: Sequence[bytes]
) -> dict[bytes, dict[uuid.UUID | None, ConsentSnapshot]]:
    """Every state row of these numbers, in one query (parse_state_rows' shape). Under the
    numbers' locks, what covering_state would read for each."""
    if not phone_indexes:
        return {}
    return parse_state_rows(driver_connection(session).execute(STATE_ROWS_SQL, {"indexes": list(phone_indexes)}))


def covering(rows: StateRows, station_id: uuid.UUID | None) -> EffectiveConsent:
    """covering_state over rows already read (state_rows): the business row and the station's."""
    return combine(rows.get(None), rows.get(station_id) if station_id is not None else None)
