"""Key rotation for PII at rest: re-encrypt every ``*_encrypted`` value under the newest key.

Procedure (docs/operations.md): put the new key first in PII_KEYS and keep the old ones
after it, restart every process (so new writes use the new key and old values still
decrypt), then run ``msgworker pii rotate``. It walks each table by primary key (keyset
pagination), locks a batch with ``FOR UPDATE SKIP LOCKED`` (rows a live transaction holds
are skipped, never waited on), re-encrypts the stale values and commits per batch, each
batch in a transaction the command opens (the scope factory it passes in) with its one
public.audit_logs row (table, key id, id range, counts; a batch that re-encrypted nothing
writes none). A rerun picks up only values still under an older key, so an interrupted
rotation simply resumes.

What is *not* rotated: ``compliance.consent_events.phone_encrypted``. The consent ledger is
append-only (a trigger refuses UPDATE), which is the point of it as evidence, so its
ciphertexts stay under the key they were written with. Every key that ledger rows still
use must therefore stay in PII_KEYS (``msgworker pii status`` lists them); the current
number of each ledger row is also in ``compliance.consent_state`` (rotated), and lookups
never decrypt (they use the blind index), so an old key in the ring is a decrypt-only key.

Blind indexes (PII_INDEX_KEY) are not part of rotation: rotating that key would change
every lookup key at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Engine, Table, and_, bindparam, func, literal_column, or_, select, update

from worker import audit
from worker.audit import Actor
from worker.db import SessionScope
from worker.models import (
    AuditAction,
    ConsentEvent,
    ConsentState,
    Customer,
    CustomerReview,
    OutboundMessage,
    ReviewItem,
    WebhookInbox,
)
from worker.pii import KeyRing, PiiError, key_id_of

__all__ = [
    "INBOX_PAYLOAD_KIND",
    "NOT_ROTATED",
    "ROTATED_TABLES",
    "ColumnUsage",
    "RotatedTable",
    "RotationFailure",
    "TableResult",
    "key_usage",
    "rotate_table",
    "stale_rows",
]

log = structlog.get_logger(__name__)

# The kind (AES-GCM associated data) the receiver encrypts raw webhook bodies under.
INBOX_PAYLOAD_KIND = "inbox"


@dataclass(frozen=True, slots=True)
class RotatedTable:
    """A table whose ``*_encrypted`` columns are re-encrypted, each with its ciphertext kind."""

    table: Table
    columns: Mapping[str, str]

    @property
    def name(self) -> str:
        return f"{self.table.schema}.{self.table.name}"


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


ROTATED_TABLES: tuple[RotatedTable, ...] = (
    RotatedTable(
        _table(Customer),
        {"phone_encrypted": "phone", "email_encrypted": "email", "address_encrypted": "address"},
    ),
    RotatedTable(_table(OutboundMessage), {"to_encrypted": "phone"}),
    RotatedTable(_table(WebhookInbox), {"payload_encrypted": INBOX_PAYLOAD_KIND}),
    RotatedTable(_table(ConsentState), {"phone_encrypted": "phone"}),
    RotatedTable(_table(ReviewItem), {"phone_encrypted": "phone"}),
    RotatedTable(_table(CustomerReview), {"reply_encrypted": "review_reply"}),
)

# (table, column) -> why it is left under its original key.
NOT_ROTATED: dict[tuple[str, str], str] = {
    (
        f"{_table(ConsentEvent).schema}.{_table(ConsentEvent).name}",
        "phone_encrypted",
    ): "append-only consent ledger (a trigger refuses UPDATE); keep its keys in PII_KEYS",
}


def _key_id_sql(column: Any) -> ColumnElement[str]:
    # Ciphertext is "v1.<key id>.<blob>" (worker.pii); key ids contain no ".". Literals, not
    # bind parameters, so the same expression in SELECT and GROUP BY compares equal.
    return func.split_part(column, literal_column("'.'"), literal_column("2"))


def _stale(rt: RotatedTable, current_kid: str) -> ColumnElement[bool]:
    return or_(*(and_(rt.table.c[c].is_not(None), _key_id_sql(rt.table.c[c]) != current_kid) for c in rt.columns))


@dataclass(frozen=True, slots=True)
class ColumnUsage:
    """How many values of one column are under each key id."""

    table: str
    column: str
    by_key: dict[str, int]
    rotated: bool
    note: str | None = None


def key_usage(engine: Engine) -> list[ColumnUsage]:
    """Values per key id for every encrypted column, rotated or not (for status and dry runs)."""
    out: list[ColumnUsage] = []
    with engine.connect() as conn:
        for rt in ROTATED_TABLES:
            for column in rt.columns:
                col = rt.table.c[column]
                rows = conn.execute(
                    select(_key_id_sql(col), func.count()).where(col.is_not(None)).group_by(_key_id_sql(col))
                ).all()
                out.append(ColumnUsage(rt.name, column, {str(k): int(n) for k, n in rows}, rotated=True))
        ledger = _table(ConsentEvent)
        for (name, column), why in NOT_ROTATED.items():
            col = ledger.c[column]
            rows = conn.execute(
                select(_key_id_sql(col), func.count()).where(col.is_not(None)).group_by(_key_id_sql(col))
            ).all()
            out.append(ColumnUsage(name, column, {str(k): int(n) for k, n in rows}, rotated=False, note=why))
    return out


def stale_rows(engine: Engine, rt: RotatedTable, current_kid: str) -> int:
    """Rows of ``rt`` with at least one value not under ``current_kid``."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(rt.table).where(_stale(rt, current_kid))).scalar_one())


@dataclass(frozen=True, slots=True)
class RotationFailure:
    """A value that could not be re-encrypted (unknown key, wrong kind, corrupt); left as it was."""

    row_id: str
    column: str
    error: str


@dataclass(slots=True)
class TableResult:
    table: str
    batches: int = 0
    rows: int = 0
    values: int = 0
    failures: list[RotationFailure] = field(default_factory=list)
    stopped_early: bool = False


def rotate_table(
    scope: SessionScope,
    rt: RotatedTable,
    ring: KeyRing,
    *,
    actor: Actor,
    batch_size: int = 500,
    max_batches: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> TableResult:
    """Re-encrypt ``rt``'s stale values under ``ring``'s current key, one ``scope()`` transaction per batch.

    ``on_batch(rows_examined)`` is called after each commit (the progress bar). Values that
    fail to decrypt are recorded in the result and left untouched; the batch still commits.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    kid = ring.current_key_id
    pk = rt.table.primary_key.columns.values()[0]
    columns = list(rt.columns.items())
    # Re-encryption is not a change of the record: keep updated_at (the reconciler and
    # reports read it) by assigning it to itself, which also suppresses the ORM onupdate.
    keep = {"updated_at": rt.table.c.updated_at} if "updated_at" in rt.table.c else {}
    result = TableResult(rt.name)
    last: Any = None
    while max_batches is None or result.batches < max_batches:
        with scope() as session:
            query = select(pk, *(rt.table.c[c] for c, _ in columns)).where(_stale(rt, kid))
            if last is not None:
                query = query.where(pk > last)
            rows = session.execute(query.order_by(pk).limit(batch_size).with_for_update(skip_locked=True)).all()
            if not rows:
                break
            # Rows grouped by which columns change, so each group is one executemany
            # (psycopg pipelines it): a round trip per batch, not per row.
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            values_before = result.values
            for row in rows:
                row_id, values = row[0], row[1:]
                changes: dict[str, Any] = {}
                for (column, kind), token in zip(columns, values, strict=True):
                    if token is None:
                        continue
                    try:
                        if key_id_of(token) == kid:
                            continue
                        changes[column] = ring.encrypt(ring.decrypt(token, kind=kind), kind=kind)
                    except PiiError as exc:
                        result.failures.append(RotationFailure(str(row_id), column, str(exc)))
                if changes:
                    groups.setdefault(tuple(sorted(changes)), []).append({"_row_id": row_id, **changes})
                    result.values += len(changes)
            for changed, params in groups.items():
                statement = (
                    update(rt.table)
                    .where(pk == bindparam("_row_id"))
                    .values(**{c: bindparam(c) for c in changed}, **keep)
                )
                session.execute(statement, params)
            last = rows[-1][0]
            if result.values > values_before:
                audit.record(
                    session,
                    actor,
                    action=AuditAction.UPDATE,
                    resource_type="pii_rotation",
                    resource_id=rt.name,
                    new_values={
                        "key_id": kid,
                        "batch": result.batches + 1,
                        "rows": len(rows),
                        "values": result.values - values_before,
                        "first_id": str(rows[0][0]),
                        "last_id": str(last),
                    },
                )
        result.batches += 1
        result.rows += len(rows)
        log.info("pii_rotate_batch", table=rt.name, batch=result.batches, rows=len(rows), key_id=kid)
        if on_batch is not None:
            on_batch(len(rows))
        if len(rows) < batch_size:
            break
    else:
        result.stopped_early = True
    return result
