"""Coalesced wake-ups for the inbox drain: at most one drain task waits in the broker.

One Celery task per webhook tops out near the broker's task rate; a drain task instead
processes every pending inbox row in batches. The receiver "kicks" after each commit:

    SET msgworker:inbox:kick NX EX 10   -> set: publish a drain task; taken: nothing to do

A drain holds the key while it works and clears it *before* its final look for rows (the
look that must come back empty for it to stop). So whenever the key exists, a drain that
has not yet made its final look is running or on its way, and it will see every row
committed before the key was found taken. A row committed after that final look finds the
key cleared and publishes a new drain. Nothing is missed, and under steady traffic one drain
keeps going with no task per webhook at all. A drain that takes a full batch clears the key
too, so a backlog gets a second drain alongside. A drain clears the key at most once: after
that the key is the next drain's, and this one stops at its next empty look (which came after
its clear) or at its time budget, when it publishes a successor only if no key is set.

If the task is lost (broker restart) the key expires after KICK_TTL_SECONDS, and the beat
sweeper drains whatever is still pending anyway.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.settings import get_settings

__all__ = ["DRAIN_TASK", "KICK_KEY", "KICK_TTL_SECONDS", "clear", "client", "kick", "publish_drain", "request_drain"]

log = structlog.get_logger(__name__)

KICK_KEY = "msgworker:inbox:kick"
KICK_TTL_SECONDS = 10
DRAIN_TASK = "tasks.ingest.drain_inbox"


@functools.lru_cache(maxsize=4)
def client(url: str) -> redis.Redis[bytes]:
    """A Redis client that fails fast: a webhook must not wait on a dead Redis."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def kick(conn: redis.Redis[bytes], publish: Callable[[], object]) -> bool:
    """Ensure a drain runs after this call; True when this call published the task.

    Raises the Redis or broker error, after releasing the key so the next kick retries.
    """
    if not conn.set(KICK_KEY, b"1", nx=True, ex=KICK_TTL_SECONDS):
        return False
    try:
        publish()
    except BaseException:
        with contextlib.suppress(redis.RedisError):  # it expires on its own otherwise
            conn.delete(KICK_KEY)
        raise
    return True


def clear(conn: redis.Redis[bytes]) -> None:
    conn.delete(KICK_KEY)


def publish_drain() -> None:
    from worker.after_commit import BULK_PRIORITY
    from worker.app import app

    # Behind the tasks with a deadline (an opt-out confirmation's send task): see after_commit.
    app.send_task(DRAIN_TASK, priority=BULK_PRIORITY)


def request_drain() -> bool:
    """Make sure a drain runs soon (the receiver calls this after each commit).

    Returns False when Redis or the broker is unreachable; the row is stored, and the
    sweeper drains it once they are back. Lives here, not beside the drain, so that the
    receiver imports neither the drain nor the consent engine behind it.
    """
    try:
        kick(client(get_settings().redis_url), publish_drain)
    except Exception as exc:  # noqa: BLE001 - Redis and kombu raise many types; all mean "not now"
        log.warning(
            "drain_kick_failed",
            error=type(exc).__name__,
            detail=str(exc)[:200],
            recovery="the inbox sweeper drains stored rows",
        )
        return False
    return True
