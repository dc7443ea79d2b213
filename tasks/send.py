"""Outbound tasks: send rows, release due rows, reconcile unknown outcomes.

Delivery semantics (STYLE.md item 4): ``send_messages`` has **no autoretry**. It is safe to
run twice for the same ids (each row is claimed with FOR UPDATE SKIP LOCKED and refused if an
earlier attempt may have reached Twilio); a lost run leaves rows "queued" (re-published by the
release tick) or "sending" (settled by the reconciler). The ticks are idempotent and claim
their work with SKIP LOCKED, so overlapping runs do no harm.
"""

from __future__ import annotations

import uuid

import structlog

from worker.app import app
from worker.db import session_scope
from worker.reconcile import reconcile_due
from worker.release import release_due, requeue_stale_queued
from worker.sending import send_one
from worker.tasks_base import DbTask

log = structlog.get_logger(__name__)


@app.task(base=DbTask, bind=True, name="tasks.send.send_messages", transactional=False)
def send_messages(self: DbTask, *, message_ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for raw in message_ids:
        message_id = uuid.UUID(raw)
        try:
            status = send_one(message_id, task_id=self.request.id).status
        except Exception:
            # Its row stays "queued" (re-published) or "sending" (reconciled): nothing is lost.
            log.exception("send_failed_unexpectedly", message_id=raw)
            status = "error"
        counts[status] = counts.get(status, 0) + 1
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
