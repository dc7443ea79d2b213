"""A real `celery -A worker worker` process consumes a JSON task and reaches the database."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.support.processes import Proc, wait_for
from worker.app import app

pytestmark = pytest.mark.e2e


def test_real_worker_runs_task_end_to_end(worker_proc: Proc, redis_client: redis.Redis) -> None:
    """send_task -> Redis -> worker process -> Postgres -> Redis marker, with JSON on the wire."""
    token = uuid.uuid4().hex
    app.send_task("tasks.maintenance.ping", kwargs={"token": token})
    wait_for(
        lambda: bool(redis_client.exists(f"msgworker:ping:{token}")),
        timeout=20,
        what="ping marker",
        log=worker_proc.log_path,
    )
    assert b"-" in redis_client.get(f"msgworker:ping:{token}")  # a database timestamp
    assert worker_proc.alive
