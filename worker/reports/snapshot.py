"""One consistent, read-only view of the database for an export, in the caller's transaction.

An export may read for minutes while texts keep arriving. It reads everything in one
REPEATABLE READ snapshot, so rows committed meanwhile are simply not seen and the report
never mixes two moments. The reading runs inside a savepoint with
``transaction_read_only = on``, so PostgreSQL itself refuses any write the export code might
attempt; leaving the savepoint (ROLLBACK TO) restores read-write for the one row the export
must write, its audit row, in the same transaction and so the same snapshot
(docs/reports.md#snapshot-and-audit).

The caller owns the transaction (worker/cli/report.py, tasks/reports.py) and must not have
run a statement in it yet: the isolation level can only be set first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from worker.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["ReadSnapshot", "StationInfo", "load_stations", "read_snapshot"]

# A long export is many FETCHes, each its own statement; a single FETCH that sorts or
# aggregates may take longer than the service default (30 s).
_STATEMENT_TIMEOUT = "10min"


@dataclass(frozen=True, slots=True)
class StationInfo:
    id: uuid.UUID
    code: str
    timezone: str


@dataclass(frozen=True, slots=True)
class ReadSnapshot:
    conn: psycopg.Connection[Any]
    # The database's clock when the snapshot was taken, and the snapshot itself
    # (pg_current_snapshot: which transactions it sees), for the record.
    taken_at: datetime
    snapshot: str
    # pg_export_snapshot(): another connection can read exactly this snapshot while this
    # transaction lasts (the chain check runs beside the rows, worker/reports/chain.py).
    exported: str
    # Every station, deleted ones too (a report may cover a station closed since).
    stations: dict[uuid.UUID, StationInfo]

    def station_by_code(self) -> dict[str, uuid.UUID]:
        return {s.code.upper(): s.id for s in self.stations.values()}

    def find_station(self, code: str) -> StationInfo:
        """The station with this code (any case), or NotFound naming it."""
        wanted = code.strip().upper()
        for station in self.stations.values():
            if station.code.upper() == wanted:
                return station
        raise NotFound(f"no station with code {code!r} (see `msgworker station list`)", field="station")


def load_stations(conn: psycopg.Connection[Any]) -> dict[uuid.UUID, StationInfo]:
    """Every station, deleted ones too, as the connection's snapshot sees them."""
    return {
        sid: StationInfo(sid, code, tz)
        for sid, code, tz in conn.execute("SELECT id, code, timezone FROM identity.stations ORDER BY code")
    }


@contextmanager
def read_snapshot(session: Session) -> Iterator[ReadSnapshot]:
    """REPEATABLE READ, read-only while inside; read-write again (same snapshot) after."""
    # Here, not at the top: the export's second process uses this module without SQLAlchemy.
    from worker.db import driver_connection

    conn = driver_connection(session)
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    # Exported before the savepoint: PostgreSQL exports no snapshot from a subtransaction.
    exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert exported is not None
    conn.execute("SAVEPOINT report_read")
    conn.execute("SET LOCAL transaction_read_only = on")
    conn.execute(f"SET LOCAL statement_timeout = '{_STATEMENT_TIMEOUT}'")
    row = conn.execute(
        "SELECT clock_timestamp(), pg_current_snapshot()::text, current_setting('transaction_isolation')"
    ).fetchone()
    assert row is not None
    taken_at, snapshot, isolation = row
    if isolation != "repeatable read":  # pragma: no cover - SET TRANSACTION above fails first
        raise RuntimeError(f"export snapshot is {isolation}, not repeatable read")
    yield ReadSnapshot(
        conn=conn, taken_at=taken_at, snapshot=snapshot, exported=exported[0], stations=load_stations(conn)
    )
    # Closes the cursors opened inside and undoes the read-only setting; the snapshot stays.
    conn.execute("ROLLBACK TO SAVEPOINT report_read")
    conn.execute("RELEASE SAVEPOINT report_read")
