"""Outbound tasks: send rows, release due rows, reconcile unknown outcomes.

Delivery semantics (a duplicate text is a compliance event): ``send_messages`` has **no
autoretry**. It is safe to run twice for the same ids (each row is claimed with FOR UPDATE
SKIP LOCKED and refused if an earlier attempt may have reached Twilio); a lost run leaves rows
"queued" (re-published by the release tick) or "sending" (settled by the reconciler). The
ticks are idempotent and claim their work with SKIP LOCKED, so overlapping runs do no harm.
"""

from __future__ import annotations

import uuid

import structlog

from worker.app import app
from worker.db import session_scope
from worker.outbound.release import release_due, requeue_stale_queued
from worker.outbound.send import reconcile_due, send_batch
from worker.tasks_base import DbTask

log = structlog.get_logger(__name__)


@app.task(base=DbTask, bind=True, name="tasks.send.send_messages", transactional=False)
def send_messages(self: DbTask, *, message_ids: list[str]) -> dict[str, int]:
    ids = [uuid.UUID(raw) for raw in message_ids]
    try:
        results = send_batch(ids, task_id=self.request.id)
    except Exception:
        # Nothing is lost: rows still "queued" are re-published by the release tick, rows left
        # "sending" are settled by the reconciler. Logged, not retried (no blind resend).
        log.exception("send_batch_failed", count=len(ids))
        return {"error": len(ids)}
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


@app.task(name="tasks.send.release_due")
def release_due_tick() -> int:
    with session_scope() as session:
        released = release_due(session)
        requeue_stale_queued(session)
    return len(released)


@app.task(name="tasks.send.reconcile")
def reconcile_tick() -> dict[str, int]:
    report = reconcile_due()
    return {"found": len(report.found), "requeued": len(report.requeued), "waiting": len(report.waiting)}
