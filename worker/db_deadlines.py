"""Client-side deadlines on every wait for PostgreSQL, so a hung server fails fast instead of hanging us.

``statement_timeout`` and ``lock_timeout`` are enforced by the server, so they do nothing
when the server itself stops answering: a storage stall, a postmaster stopped with SIGSTOP,
a network black hole. A client then waits until the thaw: webhooks hung 35-40 s (Twilio
gives up after 15), and a Celery slot and the per-number lock it holds were stuck with
them. So every connection the receiver, the worker and the CLI open has three limits:

- ``connect_timeout`` (``DATABASE_CONNECT_TIMEOUT``): a server that accepts the TCP
  connection but never answers the start-up;
- TCP keepalives and ``tcp_user_timeout`` (``DATABASE_TCP_USER_TIMEOUT``): a peer that
  stops acknowledging (a dead host, a dropped route) is noticed by the kernel, even on a
  connection idle between statements;
- a limit on each wait for the server's answer (``DATABASE_ANSWER_TIMEOUT``; the receiver
  uses ``WEBHOOK_STORE_TIMEOUT``). A server process that stopped while its kernel still
  acknowledges the packets is visible only to the client's clock. When the limit passes
  the connection is closed, because its state is unknown (a COMMIT sent before the freeze
  may still take effect after the thaw: only idempotent work may be retried), and the
  caller gets ``NoAnswer``, an ``OperationalError``. SQLAlchemy sees a closed connection
  and treats the error as a disconnect: the pool drops it and the next unit of work opens
  a fresh one, so a process recovers on its own once the server answers again.

The limit is per wait, that is per round trip: a statement that runs long on a live server
is stopped by the server's ``statement_timeout`` first (the answer limit is longer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from psycopg.abc import RV, PQGen

from worker.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "AsyncDeadlineConnection",
    "DeadlineConnection",
    "NoAnswer",
    "connect_params",
    "install",
    "libpq_url",
]

log = structlog.get_logger(__name__)

# Keepalive probes on an idle connection: first after 10 s, then every 5 s, 3 unanswered
# probes and the kernel drops it (tcp_user_timeout bounds unacknowledged data the same way).
KEEPALIVES_IDLE = 10
KEEPALIVES_INTERVAL = 5
KEEPALIVES_COUNT = 3
# psycopg's own polling interval (it wakes this often so that signals are handled).
_WAIT_INTERVAL = 0.1


class NoAnswer(psycopg.OperationalError):
    """The server did not answer within the deadline; the connection was closed."""


def connect_params(settings: Settings, *, statement_timeout_ms: int, lock_timeout_ms: int) -> dict[str, Any]:
    """Parameters for a connection: the deadlines above and the server-side timeouts.

    Behind a transaction-mode pooler (``DATABASE_TRANSACTION_POOLER``) a client's transactions
    take turns on server sessions shared with other clients, so two things of a session cannot
    be used: a statement prepared by name (psycopg prepares a query on its fifth run, or at
    once with ``prepare=True``; PgBouncer before 1.21 passes the name to whichever session the
    next transaction gets, where it is missing or another client's), hence
    ``prepare_threshold=None``, which psycopg honours even over ``prepare=True``; and start-up
    ``options`` (PgBouncer refuses the parameter), hence the server-side timeouts must then be
    the role's or the pool's settings (docs/operations.md "Behind PgBouncer").
    """
    params: dict[str, Any] = {
        "connect_timeout": settings.DATABASE_CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE,
        "keepalives_interval": KEEPALIVES_INTERVAL,
        "keepalives_count": KEEPALIVES_COUNT,
        "tcp_user_timeout": int(settings.DATABASE_TCP_USER_TIMEOUT * 1000),
    }
    if settings.DATABASE_TRANSACTION_POOLER:
        params["prepare_threshold"] = None
    else:
        params["options"] = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={lock_timeout_ms}"
    return params


def libpq_url(sqlalchemy_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as the plain URL psycopg itself takes."""
    from sqlalchemy import make_url  # here: the report's second process imports no SQLAlchemy

    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _gave_up(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], limit: float) -> NoAnswer:
    # The statement may be half sent or its answer half read: the connection cannot be used again.
    conn.pgconn.finish()
    log.warning("database_no_answer", seconds=limit)
    return NoAnswer(f"no answer from the database within {limit:g} s; connection closed")


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after ``answer_timeout`` seconds."""

    answer_timeout: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> RV:
        if timeout is not None or self.answer_timeout is None:  # psycopg's own timed waits stay its own
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.answer_timeout)
        except psycopg.errors._WaitTimeout:
            raise _gave_up(self, self.answer_timeout) from None


class AsyncDeadlineConnection(psycopg.AsyncConnection[Any]):
    """``DeadlineConnection`` for asyncio. No task cancellation is involved: psycopg answers a
    cancelled wait by asking the server to cancel the query, and waits for the server that
    does not answer."""

    answer_timeout: float | None = None

    async def wait(self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> RV:
        if timeout is not None or self.answer_timeout is None:
            return await super().wait(gen, interval, timeout)
        try:
            return await super().wait(gen, interval, self.answer_timeout)
        except psycopg.errors._WaitTimeout:
            raise _gave_up(self, self.answer_timeout) from None


def install(engine: Engine, answer_timeout: float) -> Engine:
    """Make the engine open ``DeadlineConnection``s with this answer limit (libpq parameters are
    the engine's ``connect_args``, see ``connect_params``)."""
    from sqlalchemy import event

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> DeadlineConnection:
        conn = DeadlineConnection.connect(*cargs, **cparams)
        conn.answer_timeout = answer_timeout
        return conn

    return engine
