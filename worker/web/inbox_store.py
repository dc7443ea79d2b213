"""The receiver's one write: a webhook into core.webhook_inbox, committed before the reply.

The receiver has its own small engine with short timeouts: Twilio gives a webhook 15 s in
total (docs/compliance.md#webhook-retries-and-connection-overrides), so a stuck database must
turn into a quick 503, not a hung request. There is no pre-ping on checkout (a round trip per
webhook); instead an insert that fails with an operational error (say, on a connection the server
dropped at a Postgres restart) is retried once on a fresh connection. A retry is safe: the
insert is idempotent on (provider, provider_event_id).

Every wait has a deadline (worker/db_deadlines.py), so a frozen database (a storage stall, a
network black hole) is a quick 503 too: a webhook not committed within
``WEBHOOK_STORE_TIMEOUT`` is answered 503 with Retry-After (if its row commits later after
all, Twilio's retry finds it stored and gets its 200: the insert is idempotent), at most
``WEBHOOK_MAX_WAITING`` webhooks per process wait for a commit (past that, 503 at once, so a
stall cannot pile up requests without bound), and the committing connections give up on an
answer after the same limit, so the committers are free again when the database returns.

``store()`` is the synchronous form (CLI, tools, tests): one INSERT and a COMMIT on the pooled
psycopg connection. The receiver uses ``GroupStore`` (below): async psycopg on the event loop,
no thread-pool hop, and one transaction for all the webhooks waiting at that moment
(bench/ingest.py: most of the receiver's and Postgres's CPU per webhook was the per-request
thread hop, round trips and COMMIT).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import weakref
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine

from worker import pii
from worker.db_deadlines import AsyncDeadlineConnection, NoAnswer, connect_params, install, libpq_url
from worker.settings import Settings, get_settings

__all__ = [
    "POOL_SIZE",
    "POOL_TIMEOUT_SECONDS",
    "GroupStore",
    "StoreUnavailable",
    "close_group_store",
    "group_store",
    "store",
    "store_engine",
]

# The synchronous store()'s pool (CLI, tests, tools); the receiver itself uses GroupStore below.
POOL_SIZE = 8
POOL_TIMEOUT_SECONDS = 5.0

_INSERT = (
    "INSERT INTO core.webhook_inbox"
    " (provider, provider_event_id, delivery_id, content_type, payload_encrypted, from_index)"
    " VALUES (%(provider)s, %(event_id)s, %(delivery_id)s, %(content_type)s, %(payload)s, %(from_index)s)"
    " ON CONFLICT (provider, provider_event_id) DO NOTHING RETURNING id"
)


class StoreUnavailable(RuntimeError):
    """Raised when the database could not take the webhook (the receiver answers 503)."""

    def __init__(self, message: str, *, refused: bool = False, reason: str = "unavailable") -> None:
        super().__init__(message)
        # The database answered and refused the statement (not: it could not be reached).
        self.refused = refused
        # For the log: "unavailable", "refused", "timeout" (not committed in time), "busy" (queue full).
        self.reason = "refused" if refused else reason


# The receiver's server-side limits: a statement or a lock wait longer than this is refused.
_STATEMENT_TIMEOUT_MS = 5000
_LOCK_TIMEOUT_MS = 3000


def _connect_params(settings: Settings) -> dict[str, Any]:
    return connect_params(settings, statement_timeout_ms=_STATEMENT_TIMEOUT_MS, lock_timeout_ms=_LOCK_TIMEOUT_MS)


@functools.lru_cache(maxsize=2)
def _engine(url: str) -> Engine:
    settings = get_settings()
    engine = create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=4,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=False,
        connect_args=_connect_params(settings),
    )
    # Close pooled connections at exit instead of leaving them to the garbage collector.
    atexit.register(engine.dispose)
    return install(engine, settings.WEBHOOK_STORE_TIMEOUT)


def store_engine() -> Engine:
    return _engine(get_settings().DATABASE_URL)


def _row(
    provider: str,
    event_id: str,
    delivery_id: str | None,
    content_type: str | None,
    payload: str,
    from_index: bytes | None,
) -> dict[str, Any]:
    """The insert's parameters; the raw webhook is encrypted before it leaves the process.
    ``from_index``: an inbound SMS sender's blind index, which the send gate looks up."""
    return {
        "provider": provider,
        "event_id": event_id,
        "delivery_id": delivery_id,
        "content_type": content_type,
        "payload": pii.encrypt(payload, kind="inbox"),
        "from_index": from_index,
    }


def store(
    *,
    provider: str,
    event_id: str,
    delivery_id: str | None,
    content_type: str | None,
    payload: str,
    from_index: bytes | None = None,
) -> bool:
    """Insert the webhook (idempotent on provider + event id) and commit; True if it was new.

    Raises StoreUnavailable when the database cannot take it.
    """
    params = _row(provider, event_id, delivery_id, content_type, payload, from_index)
    last: Exception | None = None
    for _attempt in (1, 2):
        try:
            conn = store_engine().raw_connection()
        except Exception as exc:  # pool timeout, refused connection, bad auth: all "unavailable"
            raise StoreUnavailable(f"no database connection: {type(exc).__name__}") from exc
        try:
            cur = conn.cursor()
            cur.execute(_INSERT, params)
            created = cur.fetchone() is not None
            cur.close()
            conn.commit()
            return created
        except psycopg.OperationalError as exc:
            last = exc
            conn.invalidate()  # never hand this connection out again
        except psycopg.Error as exc:
            raise StoreUnavailable(f"database refused the insert: {type(exc).__name__}") from exc
        finally:
            conn.close()  # back to the pool (rolled back if not committed), or discarded
    raise StoreUnavailable(f"database unavailable: {type(last).__name__}") from last


# ---------------------------------------------------------------------------------------
# The receiver's path: async, on the event loop, with group commit.
#
# Every webhook used to cost a thread-pool hop, a pool checkout, an INSERT round trip and a
# COMMIT (a WAL flush) of its own. Here the requests of one event loop hand their rows to a
# committer: up to COMMITTERS transactions at a time, each inserting every row waiting at
# that moment with one statement and committing once. A request is answered only after the
# transaction holding its row committed (so never a 2xx for a row not stored); an idle
# receiver writes a lone webhook at once. If the group fails for another reason than a lost
# connection, its rows are written one by one, so one bad row cannot fail its neighbours.
# ---------------------------------------------------------------------------------------

COMMITTERS = 4
MAX_GROUP = 64

_INSERT_GROUP = (
    "INSERT INTO core.webhook_inbox"
    " (provider, provider_event_id, delivery_id, content_type, payload_encrypted, from_index)"
    " SELECT * FROM unnest(%(provider)s::text[], %(event_id)s::text[], %(delivery_id)s::text[],"
    " %(content_type)s::text[], %(payload)s::text[], %(from_index)s::bytea[])"
    " ON CONFLICT (provider, provider_event_id) DO NOTHING RETURNING provider, provider_event_id"
)

_Pending = tuple[dict[str, Any], "asyncio.Future[bool]"]


class GroupStore:
    """One event loop's async inbox writer (see above). ``close()`` on shutdown."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        s = settings or get_settings()
        self._url = url
        self._connect_params = _connect_params(s)
        self._timeout = s.WEBHOOK_STORE_TIMEOUT
        self._max_waiting = s.WEBHOOK_MAX_WAITING
        self._waiting = 0  # requests awaiting their commit, queued or in a committer's group
        self._pending: list[_Pending] = []
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def store(
        self,
        *,
        provider: str,
        event_id: str,
        delivery_id: str | None,
        content_type: str | None,
        payload: str,
        from_index: bytes | None = None,
    ) -> bool:
        """``store`` for the event loop: True if new; StoreUnavailable when it was not committed in time."""
        if self._waiting >= self._max_waiting:
            raise StoreUnavailable(f"{self._waiting} webhooks already waiting for the database", reason="busy")
        row = _row(provider, event_id, delivery_id, content_type, payload, from_index)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._running < COMMITTERS:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._commit_loop())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._waiting += 1
        try:
            # shield: the timeout must not cancel the future a committer may be answering.
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            future.cancel()  # a committer that has not taken the row yet skips it
            raise StoreUnavailable(f"not committed within {self._timeout:g} s", reason="timeout") from None
        finally:
            self._waiting -= 1

    async def _commit_loop(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                group = [one for one in group if not one[1].done()]  # its request gave up waiting
                if group:
                    await self._commit(group)
        finally:
            self._running -= 1

    async def _commit(self, group: list[_Pending]) -> None:
        try:
            created = await self._write([row for row, _ in group])
        except StoreUnavailable as exc:
            if len(group) > 1 and exc.refused:
                for one in group:  # isolate the row the database refuses
                    await self._commit([one])
                return
            for _, future in group:
                if not future.done():
                    future.set_exception(StoreUnavailable(str(exc), reason=exc.reason))
            return
        except BaseException as exc:  # every waiting request must get an answer
            for _, future in group:
                if not future.done():
                    future.set_exception(StoreUnavailable(f"unexpected error: {type(exc).__name__}"))
            if not isinstance(exc, Exception):
                raise
            return
        for (_row, future), new in zip(group, created, strict=True):
            if not future.done():
                future.set_result(new)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._idle:
            return self._idle.pop()
        try:
            conn = await AsyncDeadlineConnection.connect(self._url, **self._connect_params)
        except Exception as exc:  # refused connection, bad auth, timeout: all "unavailable"
            raise StoreUnavailable(f"no database connection: {type(exc).__name__}") from exc
        conn.answer_timeout = self._timeout
        return conn

    async def _write(self, rows: list[dict[str, Any]]) -> list[bool]:
        """Insert the rows in one transaction and commit; per row, True if it was new."""
        params = {key: [r[key] for r in rows] for key in ("provider", "event_id", "delivery_id", "content_type",
                                                           "payload", "from_index")}
        last: Exception | None = None
        for _attempt in (1, 2):  # a connection the server dropped is retried once on a new one
            conn = await self._connection()
            try:
                async with conn.cursor() as cur:
                    await cur.execute(_INSERT_GROUP, params)
                    inserted = {(p, e) for p, e in await cur.fetchall()}
                await conn.commit()
            except NoAnswer as exc:  # a frozen server: a new connection would wait just the same
                await _discard(conn)
                raise StoreUnavailable(str(exc), reason="timeout") from exc
            except psycopg.OperationalError as exc:
                last = exc
                await _discard(conn)
                continue
            except psycopg.Error as exc:
                await _discard(conn)
                raise StoreUnavailable(f"database refused the insert: {type(exc).__name__}", refused=True) from exc
            except BaseException:
                await _discard(conn)
                raise
            self._idle.append(conn)
            # The first of two equal keys in one group is the one that was new.
            out: list[bool] = []
            for r in rows:
                key = (r["provider"], r["event_id"])
                out.append(key in inserted)
                inserted.discard(key)
            return out
        raise StoreUnavailable(f"database unavailable: {type(last).__name__}") from last

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await _discard(conn)


async def close_group_store() -> None:
    """Close the running loop's connections (the app's shutdown)."""
    found = _group_stores.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()


async def _discard(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail; it is gone either way
        await conn.close()


_group_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupStore] = weakref.WeakKeyDictionary()


def group_store() -> GroupStore:
    """The running event loop's GroupStore (test clients run their own loops)."""
    loop = asyncio.get_running_loop()
    found = _group_stores.get(loop)
    if found is None:
        found = _group_stores[loop] = GroupStore(libpq_url(get_settings().DATABASE_URL))
    return found
