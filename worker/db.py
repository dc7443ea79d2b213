"""Engine and sessions: one session and one transaction per unit of work.

Domain code takes a ``Session`` and never commits; whoever opened the scope (a task's
base class, a CLI command, a request handler) commits or rolls back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from worker.settings import get_settings

__all__ = ["engine", "get_sessionmaker", "reset_engine", "session_scope"]


_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    existing = _engines.get(url)
    if existing is not None:
        return existing
    created = _engines[url] = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        # A stuck query must not hold a worker slot (or a per-number lock) forever.
        connect_args={"options": "-c statement_timeout=30000 -c lock_timeout=10000"},
    )
    return created


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
