"""What the ingest tasks, the receiver and the CLI call: drain, sweep, kick, retry one row."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

import redis
import structlog
from sqlalchemy import text

from worker.db import session_scope
from worker.ingest import kick
from worker.ingest.drain import DrainStats, RowResult, drain, load_items, process_items, sweep
from worker.settings import get_settings

__all__ = ["DRAIN_MAX_SECONDS", "drain_now", "retry_row", "sweep_now"]

log = structlog.get_logger(__name__)

# One drain run's time budget; a longer backlog is handed to a fresh task so that the
# worker slot is released now and then (and the task stays far below its time limit).
DRAIN_MAX_SECONDS = 20.0
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


def drain_now() -> dict[str, Any]:
    # The kick stays set while this run drains (so webhooks meanwhile publish no more tasks)
    # and is released before the run's final look for rows (see kick.py for why that order).
    settings = get_settings()
    stats = drain(
        batch_size=settings.INBOX_BATCH_SIZE,
        max_seconds=DRAIN_MAX_SECONDS,
        release=_release_kick,
        linger_seconds=DRAIN_LINGER_SECONDS,
    )
    if stats.stopped_by == "time":
        kick.request_drain()
    return _summary(stats)


def sweep_now() -> dict[str, Any]:
    settings = get_settings()
    result = sweep(grace_seconds=settings.INBOX_SWEEP_GRACE_SECONDS)
    out: dict[str, Any] = asdict(result)
    if result.stale:
        log.info("inbox_sweep_draining", stale=result.stale)
        out["drain"] = _summary(drain(batch_size=settings.INBOX_BATCH_SIZE, max_seconds=DRAIN_MAX_SECONDS))
    return out


def retry_row(inbox_id: uuid.UUID) -> RowResult | None:
    """Set one row back to pending with a fresh attempt count and process it now.

    None when no row has this id. A processed row is re-run too: that is safe (every
    write is idempotent) and is how an operator re-checks one.
    """
    with session_scope() as session:
        found = session.execute(
            text(
                "UPDATE core.webhook_inbox SET status = 'pending', attempts = 1, enqueued_at = now()"
                " WHERE id = :id RETURNING id"
            ),
            {"id": inbox_id},
        ).scalar_one_or_none()
        if found is None:
            return None
        items = load_items(session, [inbox_id])
        if not items:
            return None
        results = process_items(session, items)
    return results[0]
