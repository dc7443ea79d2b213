"""The send path's in-SQL number lock is the very lock consent recording takes (worker.locks.lock_number)."""

from __future__ import annotations

import os

from sqlalchemy import text

from worker.db import get_sessionmaker
from worker.locks import LockNamespace, lock_number
from worker.outbound.facts import LOCK_KEY_SQL

_TRY = text(
    f"SELECT pg_try_advisory_xact_lock({int(LockNamespace.PHONE)}, {LOCK_KEY_SQL}) "
    "FROM (SELECT CAST(:idx AS bytea) AS to_index) AS o"
)


def test_sql_lock_key_matches_lock_number(database: str) -> None:
    """For random blind indexes (both signs of the key), holding lock_number makes the SQL-keyed lock busy."""
    maker = get_sessionmaker()
    holder, prober = maker(), maker()
    try:
        for _ in range(50):
            index = os.urandom(32)
            holder.begin()
            lock_number(holder, index)
            prober.begin()
            assert prober.execute(_TRY, {"idx": index}).scalar_one() is False
            prober.rollback()
            holder.rollback()
            prober.begin()  # released with the holder's transaction: free again
            assert prober.execute(_TRY, {"idx": index}).scalar_one() is True
            prober.rollback()
    finally:
        holder.close()
        prober.close()
