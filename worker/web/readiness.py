"""/readyz: can this receiver store a webhook and kick the worker right now? Answered within 2 s.

Each dependency (the database, the broker) is checked by at most one probe at a time,
shared by every /readyz call that arrives meanwhile, on the event loop, never in the thread
pool: a hung database must not pile up probes or starve /healthz (which touches nothing). A
probe not finished within ``READY_TIMEOUT`` counts as "not ready" and is left to end on its
own deadlines (connect timeout, answer timeout) rather than cancelled: cancelling psycopg
in the middle of a query makes it ask the server to cancel, and wait for the very server
that does not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis

from worker.db_deadlines import AsyncDeadlineConnection, connect_params, libpq_url
from worker.settings import Settings

__all__ = ["READY_TIMEOUT", "Readiness"]

# The whole answer, every probe included, within 2 s (an orchestrator's usual probe timeout).
READY_TIMEOUT = 1.5
_PROBE_ANSWER_TIMEOUT = 1.0


class _Probe:
    """One dependency's check, single-flight."""

    def __init__(self, check: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._check = check
        self._task: asyncio.Task[None] | None = None

    def _current(self) -> asyncio.Task[None]:
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._task = asyncio.get_running_loop().create_task(self._check())
            task.add_done_callback(_retrieve)
        return task

    async def result(self, timeout: float) -> str:
        task = self._current()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            return f"error: no answer within {timeout:g} s"
        exc = task.exception()
        return "ok" if exc is None else f"error: {type(exc).__name__}"


def _retrieve(task: asyncio.Task[None]) -> None:
    # A probe that failed after its caller stopped waiting: its error is reported by the next call.
    if not task.cancelled():
        task.exception()


class Readiness:
    """The database and broker probes of one receiver process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._probes = {"database": _Probe(self._database), "broker": _Probe(self._broker)}

    async def _database(self) -> None:
        params = connect_params(self._settings, statement_timeout_ms=1000, lock_timeout_ms=1000)
        params["connect_timeout"] = 2  # libpq's minimum; the caller stops waiting sooner
        conn = await AsyncDeadlineConnection.connect(libpq_url(self._settings.DATABASE_URL), **params)
        conn.answer_timeout = _PROBE_ANSWER_TIMEOUT
        try:
            await conn.execute("SELECT 1")
        finally:
            await conn.close()

    async def _broker(self) -> None:
        client = aioredis.Redis.from_url(
            self._settings.CELERY_BROKER_URL,
            socket_connect_timeout=_PROBE_ANSWER_TIMEOUT,
            socket_timeout=_PROBE_ANSWER_TIMEOUT,
        )
        try:
            await client.ping()
        finally:
            await client.aclose()  # type: ignore[attr-defined]  # redis 5+; the stubs are older

    async def check(self) -> dict[str, str]:
        """Each dependency's state, "ok" or "error: ..."; returns within READY_TIMEOUT."""
        names = list(self._probes)
        states = await asyncio.gather(*(self._probes[n].result(READY_TIMEOUT) for n in names))
        return dict(zip(names, states, strict=True))
