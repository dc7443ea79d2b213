"""What waits in the Celery broker (Redis), read the way the worker takes it."""

from __future__ import annotations

import json
from typing import Any

import redis

QUEUE = "msgworker"
# Kombu's Redis transport: one list per priority step (0, 3, 6, 9), the first taken first.
_LISTS = [QUEUE] + [f"{QUEUE}\x06\x16{p}" for p in (3, 6, 9)]


def drop_tasks(client: redis.Redis, task: str) -> int:
    """Remove every waiting message of this task (as if lost with the broker); how many were removed."""
    dropped = 0
    for key in _LISTS:
        for raw in client.lrange(key, 0, -1):
            if json.loads(raw)["headers"]["task"] == task:
                dropped += int(client.lrem(key, 1, raw))
    return dropped


def waiting_messages(client: redis.Redis) -> list[dict[str, Any]]:
    """Every waiting task message, oldest first within a priority, higher priorities first."""
    return [json.loads(raw) for key in _LISTS for raw in reversed(client.lrange(key, 0, -1))]
