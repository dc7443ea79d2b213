"""Publish Celery tasks only after the surrounding transaction commits.

A task published inside a transaction that later rolls back would act on rows that do not
exist (or, worse, on a decision that was never recorded). So callers register the task on
the session; an ``after_commit`` listener publishes it, and a rollback discards it. A task
registered inside a savepoint (``begin_nested``, as the batched ingest does per row) is
remembered with that savepoint and discarded if the savepoint rolls back, even when the
outer transaction later commits; a released savepoint is not a commit, so its tasks wait for
the outer one (and go with it if it rolls back).

Tasks go out at priority 0 (the broker's first) unless the caller passes ``BULK_PRIORITY``:
inbox drains and the send tasks of released rows take that, so the few tasks with a deadline
(an opt-out confirmation's send task, the ticks) are taken ahead of a backlog of drains. With
one list, under a backlog they waited behind dozens of drain tasks, each up to a second of a
worker process (issue 14 point 3, bench/RESULTS.md). On Redis a priority is a list of its own
(``msgworker``, then ``msgworker\x06\x163``), taken in that order by the worker's BRPOP.

Publishing can still fail after commit (broker down). That is logged, not raised: the
committed row is the source of truth and a beat sweeper re-enqueues what was never
processed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

__all__ = ["BULK_PRIORITY", "call_after_commit", "pending_tasks", "publish_after_commit"]

# Kombu's Redis transport keeps priorities 0, 3, 6, 9 as separate lists and takes 0 first.
BULK_PRIORITY = 3

_KEY = "msgworker_after_commit"
_CALLS = "msgworker_after_commit_calls"
log = structlog.get_logger(__name__)


def publish_after_commit(
    session: Session, task_name: str, /, *, countdown: float | None = None, priority: int = 0, **kwargs: Any
) -> None:
    """Publish ``task_name(**kwargs)`` once this session's outermost transaction commits."""
    owner = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_KEY, []).append((owner, task_name, kwargs, countdown, priority))


def call_after_commit(session: Session, call: Callable[[], None], /) -> None:
    """Run ``call()`` in this process once the outermost transaction commits (a metric that must
    count only what happened); discarded with a rolled-back transaction or savepoint, as a task is."""
    owner = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_CALLS, []).append((owner, call))


def pending_tasks(session: Session) -> list[tuple[str, dict[str, Any], float | None]]:
    return [(name, kwargs, countdown) for _, name, kwargs, countdown, _ in session.info.get(_KEY, [])]


def _within(owner: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while owner is not None:
        if owner is ended:
            return True
        owner = owner.parent
    return False


def _celery_app() -> Celery:
    from worker.app import app

    return app


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy sends after_commit for a released savepoint too; nothing is committed yet
        # (the outer transaction may still roll back, and other connections do not see the rows).
        # Publishing there handed a send task a row it could not see yet.
        return
    for _, call in session.info.pop(_CALLS, []):
        call()
    queued = session.info.pop(_KEY, [])
    if not queued:
        return
    app = _celery_app()
    for _, task_name, kwargs, countdown, priority in queued:
        try:
            app.send_task(task_name, kwargs=kwargs, countdown=countdown, priority=priority)
        except Exception as exc:  # noqa: BLE001 - the broker can fail in many ways
            log.warning(
                "enqueue_failed_after_commit",
                task=task_name,
                error=type(exc).__name__,
                detail=str(exc)[:200],
                recovery="sweeper re-enqueues from the database",
            )


@event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, previous_transaction: SessionTransaction) -> None:
    for key in (_KEY, _CALLS):
        if previous_transaction.parent is None:
            session.info.pop(key, None)
            continue
        queued = session.info.get(key)
        if queued:
            # A savepoint rolled back: forget what was registered inside it (or deeper).
            session.info[key] = [q for q in queued if not _within(q[0], previous_transaction)]
