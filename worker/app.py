"""The Celery app (``celery -A worker worker|beat``) and its process-level hooks."""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery import Celery, signals

from worker.beat import quiet_idle_ticks
from worker.db import reset_engine
from worker.logging import configure_logging
from worker.metrics import process_exited
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


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    # The main process serves what its pool children count (worker/metrics_worker.py).
    s = get_settings()
    if s.WORKER_METRICS_PORT:
        from worker.metrics_worker import serve

        serve(s.WORKER_METRICS_HOST, s.WORKER_METRICS_PORT)


@signals.worker_init.connect
def _load_before_fork(**_: Any) -> None:
    # Sent in the main process before the prefork pool forks: what is imported here the
    # children share, rather than each importing it in its first send or review under load
    # (issue 14 point 3: py-spy showed these imports at ~10% of the worker's CPU in a 10,000
    # webhook run with the realistic mix).
    from datetime import UTC, datetime

    from compliance.business_days import preload as load_holidays
    from worker.provider.client import preload as load_twilio

    load_twilio()
    load_holidays(datetime.now(UTC).date())


@signals.worker_process_shutdown.connect
def _child_exits(pid: int | None = None, **_: Any) -> None:
    process_exited(pid or os.getpid())


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
