"""Reading compliance.consent_state: the rows that cover a send, merged.

The send gate's lookup is :func:`covering_state`: one indexed query for the number's
business-wide row and its station's row (unique index on (phone_index, station_id)),
merged by compliance.consent_rules.combine. Take worker.locks.lock_number first when the
answer decides a send, so a consent change cannot commit between the read and the send
decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from compliance.consent_rules import ConsentSnapshot, EffectiveConsent, combine
from worker.models import ConsentState

__all__ = ["SNAPSHOT_FIELDS", "covering_rows", "covering_state", "snapshot_of"]

SNAPSHOT_FIELDS: tuple[str, ...] = tuple(ConsentSnapshot.__dataclass_fields__)

_COLUMNS = [getattr(ConsentState, name) for name in SNAPSHOT_FIELDS]


def snapshot_of(row: ConsentState | Mapping[str, Any] | RowMapping) -> ConsentSnapshot:
    """A state row (ORM object or mapping) as the pure projection's snapshot."""
    if isinstance(row, ConsentState):
        return ConsentSnapshot(**{name: getattr(row, name) for name in SNAPSHOT_FIELDS})
    return ConsentSnapshot(**{name: row[name] for name in SNAPSHOT_FIELDS})


def covering_rows(
    session: Session, phone_index: bytes, station_id: uuid.UUID | None
) -> tuple[ConsentSnapshot | None, ConsentSnapshot | None]:
    """(business row, station row) for the number; None where no row exists."""
    scope: ColumnElement[bool] = ConsentState.station_id.is_(None)
    if station_id is not None:
        scope = or_(scope, ConsentState.station_id == station_id)
    business: ConsentSnapshot | None = None
    station: ConsentSnapshot | None = None
    for row in session.execute(
        select(ConsentState.station_id, *_COLUMNS).where(ConsentState.phone_index == phone_index, scope)
    ).mappings():
        snap = snapshot_of(row)
        if row["station_id"] is None:
            business = snap
        else:
            station = snap
    return business, station


def covering_state(session: Session, phone_index: bytes, station_id: uuid.UUID | None) -> EffectiveConsent:
    """The consent that covers a send to this number from this station."""
    business, station = covering_rows(session, phone_index, station_id)
    return combine(business, station)
