"""Publish Celery tasks only after the surrounding transaction commits.

A task published inside a transaction that later rolls back would act on rows that do not
exist (or, worse, on a decision that was never recorded). So callers register the task on
the session; an ``after_commit`` listener publishes it, and a rollback discards it.

Publishing can still fail after commit (broker down). That is logged, not raised: the
committed row is the source of truth and a beat sweeper re-enqueues what was never
processed.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

__all__ = ["enqueue_after_commit", "pending_tasks"]

_KEY = "msgworker_after_commit"
log = structlog.get_logger(__name__)


def enqueue_after_commit(session: Session, task_name: str, /, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Publish ``task_name(**kwargs)`` once this session's transaction commits."""
    session.info.setdefault(_KEY, []).append((task_name, kwargs, countdown))


def pending_tasks(session: Session) -> list[tuple[str, dict[str, Any], float | None]]:
    return list(session.info.get(_KEY, []))


def _celery_app() -> Celery:
    from worker.app import app

    return app


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    queued = session.info.pop(_KEY, [])
    if not queued:
        return
    app = _celery_app()
    for task_name, kwargs, countdown in queued:
        try:
            app.send_task(task_name, kwargs=kwargs, countdown=countdown)
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
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
