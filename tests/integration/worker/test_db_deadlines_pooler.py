"""worker/db_deadlines.py behind a real PgBouncer in transaction mode (Debian's 1.18).

The pool has one server session, so every client's transactions run on the same session in
turn: whatever a client leaves on the session (a prepared statement, a setting) is seen by
the next one, and whatever it expects to find there from its previous transaction may be
gone. These are the properties the code relies on in a deployment behind such a pooler
(docs/operations.md "Behind PgBouncer").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support import env as test_env
from tests.support.pgbouncer import PgBouncer
from tests.support.processes import free_port
from worker.db_deadlines import connect_params
from worker.settings import Settings

LOCK = (41, 4242)


@pytest.fixture
def bouncer(database: str) -> Iterator[PgBouncer]:
    server = PgBouncer(free_port(), test_env.DB_NAME, pool_size=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dsn(bouncer: PgBouncer) -> str:
    return f"postgresql://postgres@127.0.0.1:{bouncer.port}/{test_env.DB_NAME}"


def params(*, pooler: bool) -> dict[str, Any]:
    return connect_params(
        Settings(DATABASE_TRANSACTION_POOLER=pooler), statement_timeout_ms=30000, lock_timeout_ms=10000
    )


def test_the_default_start_up_options_are_refused_by_the_pooler(bouncer: PgBouncer) -> None:
    with pytest.raises(psycopg.OperationalError, match="options"):
        psycopg.connect(dsn(bouncer), **params(pooler=False)).close()


def test_prepared_statements_collide_on_a_shared_session_unless_the_pooler_setting_turns_them_off(
    bouncer: PgBouncer,
) -> None:
    # What DATABASE_TRANSACTION_POOLER=false would do here (its options aside): two clients each
    # prepare their first statement as _pg3_0 on the one session.
    without = {k: v for k, v in params(pooler=False).items() if k != "options"}
    with (
        psycopg.connect(dsn(bouncer), autocommit=True, **without) as a,
        psycopg.connect(dsn(bouncer), autocommit=True, **without) as b,
    ):
        a.execute("SELECT 1", prepare=True)
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            b.execute("SELECT 2", prepare=True)

    with (
        psycopg.connect(dsn(bouncer), autocommit=True, **params(pooler=True)) as a,
        psycopg.connect(dsn(bouncer), autocommit=True, **params(pooler=True)) as b,
    ):
        for i in range(12):  # past psycopg's threshold of 5, and prepare=True as the hot paths ask
            assert a.execute("SELECT %s::int", (i,), prepare=True).fetchone() == (i,)
            assert b.execute("SELECT %s::int + 1", (i,), prepare=True).fetchone() == (i + 1,)
            with a.transaction():
                assert a.execute("SELECT %s::text", (str(i),)).fetchone() == (str(i),)


def test_transaction_advisory_locks_and_set_local_hold_within_the_transaction_and_end_with_it(
    database: str,
) -> None:
    server = PgBouncer(free_port(), test_env.DB_NAME, pool_size=2)
    server.start()
    try:
        with (
            psycopg.connect(dsn(server), **params(pooler=True)) as a,
            psycopg.connect(dsn(server), autocommit=True, **params(pooler=True)) as b,
        ):
            a.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)
            a.execute("SET LOCAL statement_timeout = 1234")
            assert a.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
            # The other client runs on the other session while a's transaction holds the lock.
            assert b.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", LOCK).fetchone() == (False,)
            a.commit()
            assert b.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", LOCK).fetchone() == (True,)
            # The pool's connect_query gives every session the worker's limit; a's SET LOCAL ended.
            assert a.execute("SHOW statement_timeout").fetchone() == ("30s",)
            a.rollback()
            assert b.execute("SHOW statement_timeout").fetchone() == ("30s",)
    finally:
        server.stop()
