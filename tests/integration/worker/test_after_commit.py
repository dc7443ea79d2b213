"""Tasks registered in a transaction are published only if it commits."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis
from sqlalchemy import text

from worker.after_commit import call_after_commit, publish_after_commit
from worker.db import session_scope


def _queued(client: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in client.lrange("msgworker", 0, -1)]


def _task_names(client: redis.Redis) -> list[str]:
    return [str(m["headers"]["task"]) for m in _queued(client)]  # type: ignore[index]


def test_rolled_back_transaction_publishes_nothing(clean_redis: redis.Redis) -> None:
    """An exception inside the scope rolls back and the registered task never reaches Redis."""

    def run() -> None:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
            publish_after_commit(session, "tasks.maintenance.ping", token="rolled-back")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run()
    assert _task_names(clean_redis) == []


def test_committed_transaction_publishes_once(clean_redis: redis.Redis) -> None:
    """A committed scope publishes each registered task exactly once, after the commit."""
    with session_scope() as session:
        publish_after_commit(session, "tasks.maintenance.ping", token="committed")
        assert _task_names(clean_redis) == []  # not before commit
    assert _task_names(clean_redis) == ["tasks.maintenance.ping"]


def test_rolled_back_savepoint_discards_its_tasks(clean_redis: redis.Redis) -> None:
    """A task registered in a savepoint that rolls back is not published when the outer commit succeeds."""
    with session_scope() as session:
        publish_after_commit(session, "tasks.maintenance.ping", token="outer")
        try:
            with session.begin_nested():
                publish_after_commit(session, "tasks.maintenance.ping", token="in-failed-savepoint")
                raise ValueError("row failed")
        except ValueError:
            pass
        with session.begin_nested():
            publish_after_commit(session, "tasks.maintenance.ping", token="in-released-savepoint")
    tokens = [json.loads(base64.b64decode(str(m["body"])))[1]["token"] for m in _queued(clean_redis)]
    assert sorted(tokens) == ["in-released-savepoint", "outer"]


def test_released_savepoint_publishes_only_at_the_outer_commit(clean_redis: redis.Redis) -> None:
    """A savepoint released inside a transaction is not a commit: its tasks wait for the outer commit,
    and a rollback after the release still discards them (a send task published at the release ran
    before its row was visible and found nothing to send)."""
    with session_scope() as session:
        with session.begin_nested():
            publish_after_commit(session, "tasks.maintenance.ping", token="released")
        assert _task_names(clean_redis) == []  # released, not committed
    assert _task_names(clean_redis) == ["tasks.maintenance.ping"]

    calls: list[str] = []

    def run() -> None:
        with session_scope() as session:
            with session.begin_nested():
                publish_after_commit(session, "tasks.maintenance.ping", token="released-then-rolled-back")
                call_after_commit(session, lambda: calls.append("released-then-rolled-back"))
            assert calls == []
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run()
    assert _task_names(clean_redis) == ["tasks.maintenance.ping"]
    assert calls == []


def test_a_confirmation_send_task_is_taken_before_drains_waiting_ahead_of_it(clean_redis: redis.Redis) -> None:
    """Drains go out at BULK_PRIORITY, an opt-out confirmation's send task at 0: the worker takes it first.

    With one list a confirmation's send task waited behind every drain published before it (up to
    a second of a worker process each); under a backlog dozens were (issue 14 point 3).
    """
    from worker.app import app
    from worker.ingest.kick import DRAIN_TASK, publish_drain
    from worker.outbox import SEND_TASK, send_at_commit

    publish_drain()
    publish_drain()
    with session_scope() as session:
        send_at_commit(session, [uuid.uuid4()])
    with app.connection_for_read() as connection:  # kombu's Redis channel, as the worker's consumer
        queue = connection.SimpleQueue("msgworker", no_ack=True)
        taken = [queue.get(timeout=2).headers["task"] for _ in range(3)]
        queue.close()
    assert taken == [SEND_TASK, DRAIN_TASK, DRAIN_TASK]
