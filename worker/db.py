"""Engine and sessions: one session and one transaction per unit of work.

Domain code takes a ``Session`` and never commits; whoever opened the scope (a task's
base class, a CLI command, a request handler) commits or rolls back. Only those owners and
the two flow orchestrators (worker/ingest/drain.py, worker/outbound/send.py) call
``session_scope()``; tests/unit/project/test_layout.py holds everyone else to it. A flow
that commits in steps takes a ``SessionScope`` (``session_scope`` by default) so that its
caller, or a test's rolled-back transaction, decides what a step's transaction is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeAlias

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from worker.db_deadlines import connect_params, install
from worker.settings import get_settings

__all__ = ["SessionScope", "driver_connection", "engine", "get_sessionmaker", "reset_engine", "session_scope"]

# What a multi-step flow opens once per step: a session in a transaction, committed on a
# clean exit and rolled back on an exception (``session_scope`` itself, or a test's stand-in).
SessionScope: TypeAlias = Callable[[], AbstractContextManager[Session]]


_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    existing = _engines.get(url)
    if existing is not None:
        return existing
    settings = get_settings()
    created = _engines[url] = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        # A stuck query must not hold a worker slot (or a per-number lock) forever, nor a
        # server that stopped answering (worker/db_deadlines.py).
        connect_args=connect_params(settings, statement_timeout_ms=30000, lock_timeout_ms=10000),
    )
    return install(created, settings.DATABASE_ANSWER_TIMEOUT)


def engine() -> Engine:
    return _engine(get_settings().DATABASE_URL)


def reset_engine() -> None:
    """Dispose pooled connections (after fork, or when tests switch databases)."""
    for cached in _engines.values():
        cached.dispose()
    _engines.clear()
    get_sessionmaker.cache_clear()


@functools.lru_cache(maxsize=4)
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session in a transaction: commit on success, roll back on any exception."""
    session = get_sessionmaker()()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def driver_connection(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under the session's transaction (begun if need be), flushed first.

    For the few statements on a hot path (the send gate's reads, the consent lookup) where
    SQLAlchemy's per-execution work costs more than the query: they run in the session's
    own transaction, with psycopg's prepared statements and pipelining.

    Errors from such statements are psycopg's own (``psycopg.Error``), not SQLAlchemy's
    wrappers, and SQLAlchemy does not see that the transaction failed: the caller's scope
    must roll back on any exception (``session_scope`` does; worker/ingest/drain.py catches
    both kinds), and a retry written around these paths must catch ``psycopg.Error`` too.
    """
    session.flush()  # pending ORM changes must be visible to the raw statements
    conn = session.connection().connection.driver_connection
    if not isinstance(conn, psycopg.Connection):  # pragma: no cover - the engine is psycopg 3
        raise TypeError(f"expected a psycopg 3 connection, not {type(conn).__name__}")
    return conn
