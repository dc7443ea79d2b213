"""What the ingest tasks, the receiver and the CLI call: drain, sweep, kick, retry, inspect rows.

The CLI has no SQL of its own: its reads of core.webhook_inbox and its retries are here.
A retry is a staff action, so it runs in the caller's transaction with its one audit row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import structlog
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.db import SessionScope, session_scope
from worker.ingest import kick
from worker.ingest.drain import (
    FAILED,
    PROCESSED,
    RETRY,
    DrainStats,
    RowResult,
    drain,
    load_items,
    process_items,
    sweep,
)
from worker.models import AuditAction
from worker.settings import get_settings

__all__ = [
    "DRAIN_MAX_SECONDS",
    "RetryReport",
    "drain_now",
    "failed_rows",
    "inbox_counts",
    "inbox_row",
    "retry_failed",
    "retry_row",
    "sweep_now",
]

log = structlog.get_logger(__name__)

# One drain run's time budget; a longer run is handed to a fresh task, published behind the
# tasks already waiting. Drains share the worker's processes and queue with the send path (the
# send tasks of opt-out confirmations, the release tick), and under steady traffic a drain never
# runs dry; with 20 s runs all processes were sometimes drains and a confirmation's send task
# waited seconds for one (issue 14 point 3, bench/RESULTS.md). A fresh task costs a
# millisecond or two.
DRAIN_MAX_SECONDS = 1.0
# After a small batch, a drain waits this long for more rows before claiming again.
DRAIN_LINGER_SECONDS = 0.02


def _summary(stats: DrainStats) -> dict[str, Any]:
    return {
        "batches": stats.batches,
        "processed": stats.processed,
        "failed": stats.failed,
        "deferred": stats.retry,
        "stopped_by": stats.stopped_by,
    }


def _release_kick() -> None:
    try:
        kick.clear(kick.client(get_settings().redis_url))
    except redis.RedisError as exc:  # the key expires on its own; the sweeper covers the gap
        log.warning("drain_kick_clear_failed", error=type(exc).__name__)


def drain_now(*, scope: SessionScope = session_scope) -> dict[str, Any]:
    # The kick stays set while this run drains (so webhooks meanwhile publish no more tasks)
    # and is released before the run's final look for rows (see kick.py for why that order).
    settings = get_settings()
    stats = drain(
        batch_size=settings.INBOX_BATCH_SIZE,
        max_seconds=DRAIN_MAX_SECONDS,
        release=_release_kick,
        linger_seconds=DRAIN_LINGER_SECONDS,
        scope=scope,
    )
    if stats.stopped_by == "time":
        kick.request_drain()
    return _summary(stats)


def sweep_now(*, scope: SessionScope = session_scope) -> dict[str, Any]:
    settings = get_settings()
    result = sweep(grace_seconds=settings.INBOX_SWEEP_GRACE_SECONDS, scope=scope)
    out: dict[str, Any] = asdict(result)
    if result.stale:
        log.info("inbox_sweep_draining", stale=result.stale)
        out["drain"] = _summary(
            drain(batch_size=settings.INBOX_BATCH_SIZE, max_seconds=DRAIN_MAX_SECONDS, scope=scope)
        )
    return out


# Back to pending with a fresh attempt count (the claim's lease set, so no drain takes it meanwhile).
_REQUEUE = text(
    "UPDATE core.webhook_inbox SET status = 'pending', attempts = 1, enqueued_at = now()"
    " WHERE id = ANY(:ids) RETURNING id"
)
_FAILED_IDS = text(
    "SELECT id FROM core.webhook_inbox WHERE status = 'failed' ORDER BY received_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_RETRY_CHUNK = 100


def _requeue_and_process(session: Session, ids: Sequence[uuid.UUID]) -> list[RowResult]:
    requeued = set(session.execute(_REQUEUE, {"ids": list(ids)}).scalars())
    todo = [i for i in ids if i in requeued]
    results: list[RowResult] = []
    for start in range(0, len(todo), _RETRY_CHUNK):
        results.extend(process_items(session, load_items(session, todo[start : start + _RETRY_CHUNK])))
    return results


def _counts(results: Sequence[RowResult]) -> dict[str, int]:
    counts = {PROCESSED: 0, FAILED: 0, RETRY: 0}
    for r in results:
        counts[r.outcome] += 1
    return counts


def retry_row(session: Session, inbox_id: uuid.UUID, *, actor: Actor) -> RowResult | None:
    """Set one row back to pending with a fresh attempt count and process it now (caller commits).

    None when no row has this id. A processed row is re-run too: that is safe (every
    write is idempotent) and is how an operator re-checks one. The retry's one audit row
    names the outcome.
    """
    results = _requeue_and_process(session, [inbox_id])
    if not results:
        return None
    [result] = results
    audit.record(
        session,
        actor,
        action=AuditAction.UPDATE,
        resource_type="webhook_inbox",
        resource_id=inbox_id,
        new_values={"retried": 1, **_counts(results)},
        reason="inbox retry",
    )
    return result


@dataclass
class RetryReport:
    retried: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    not_processed: list[RowResult] = field(default_factory=list)


def retry_failed(session: Session, *, actor: Actor, limit: int = 500) -> RetryReport:
    """Re-run up to ``limit`` failed rows, oldest first, in the caller's transaction.

    One audit row for the whole retry (the ids it re-ran and the outcomes); none when there
    was nothing to retry, since nothing changed.
    """
    ids = list(session.execute(_FAILED_IDS, {"limit": limit}).scalars())
    results = _requeue_and_process(session, ids)
    report = RetryReport(
        retried=len(results), counts=_counts(results), not_processed=[r for r in results if r.outcome != PROCESSED]
    )
    if results:
        audit.record(
            session,
            actor,
            action=AuditAction.UPDATE,
            resource_type="webhook_inbox",
            resource_id=None,
            new_values={"retried": report.retried, **report.counts, "ids": [str(r.inbox_id) for r in results]},
            reason="inbox retry --all",
        )
    return report


def failed_rows(session: Session, *, provider: str | None, limit: int) -> Sequence[Row[Any]]:
    """Rows marked failed, newest first: id, provider, received_at, attempts, last_error (never the payload)."""
    return session.execute(
        text(
            "SELECT id, provider, received_at, attempts, last_error FROM core.webhook_inbox"
            " WHERE status = 'failed' AND (CAST(:provider AS text) IS NULL OR provider = :provider)"
            " ORDER BY received_at DESC LIMIT :limit"
        ),
        {"provider": provider, "limit": limit},
    ).all()


def inbox_row(session: Session, inbox_id: uuid.UUID) -> Row[Any] | None:
    """One row with its (encrypted) payload, or None."""
    return session.execute(
        text(
            "SELECT id, provider, provider_event_id, delivery_id, content_type, payload_encrypted, received_at,"
            " status, attempts, last_error, processed_at FROM core.webhook_inbox WHERE id = :id"
        ),
        {"id": inbox_id},
    ).first()


def inbox_counts(session: Session) -> tuple[Sequence[Row[Any]], float | None]:
    """Rows by (provider, status, n), and the age in seconds of the oldest pending row (None if none)."""
    counts = session.execute(
        text("SELECT provider, status, count(*) AS n FROM core.webhook_inbox GROUP BY 1, 2 ORDER BY 1, 2")
    ).all()
    oldest = session.execute(
        text("SELECT extract(epoch FROM now() - min(received_at)) FROM core.webhook_inbox WHERE status = 'pending'")
    ).scalar_one()
    return counts, float(oldest) if oldest is not None else None
