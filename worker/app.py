"""The Celery app (``celery -A worker worker|beat``) and its process-level hooks."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, signals

from worker.beat import quiet_idle_ticks
from worker.db import reset_engine
from worker.logging import configure_logging
from worker.settings import get_settings

TASK_MODULES = [
    "tasks.maintenance",
    "tasks.ingest",
    "tasks.consent",
    "tasks.send",
    "tasks.campaigns",
    "tasks.reports",
]

app = Celery("msgworker", include=TASK_MODULES)
app.config_from_object("celeryconfig")


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    s = get_settings()
    configure_logging(s.LOG_LEVEL, s.LOG_FORMAT)
    quiet_idle_ticks()  # worker and beat: a tick that found nothing is a DEBUG line


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # Connections must not be shared across a fork.
    reset_engine()


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()
