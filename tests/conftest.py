"""Test harness: real Postgres and Redis, a fresh database per run built by the migrations.

- ``db_session``: unit/integration tests; everything runs inside an outer transaction that
  is rolled back, so code under test may commit and still leaves nothing behind.
- ``db_scope``: ``session_scope``'s stand-in on that session, for the flows that open their
  own transactions (the drain, the send batch, the review tick, the import): each scope is
  a savepoint, committed or rolled back like the real thing, and all of it rolled back at
  the end.
- ``clean_db``: end-to-end tests whose real processes commit for real; tables are
  truncated afterwards.
- ``worker_proc`` / ``beat_proc`` / ``receiver``: real celery and uvicorn processes.
"""

from __future__ import annotations

# The environment must be set before anything imports worker.settings.
from tests.support import env as test_env

_REDIS_DB = test_env.claim_redis_db()
TEST_ENV = test_env.configure_environment(_REDIS_DB)

import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import Connection, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from tests.support import processes  # noqa: E402
from tests.support.cli import cli  # noqa: E402, F401 - a fixture, shared by the CLI tests
from tests.support.pgbouncer import PgBouncer  # noqa: E402
from worker import migrate  # noqa: E402
from worker import settings as settings_module  # noqa: E402
from worker.db import SessionScope, engine, reset_engine  # noqa: E402
from worker.models.base import SCHEMAS  # noqa: E402
from worker.provider import client as twilio_client  # noqa: E402
from worker.provider.fake import FakeTwilio  # noqa: E402


def _admin_exec(sql: str) -> None:
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    """Create this run's database, migrate it to head, drop it at the end.

    Migrations always run on a direct connection (with MSGWORKER_TEST_PGBOUNCER=1 too): DDL and
    Alembic's own statements are no business of a transaction pooler.
    """
    _admin_exec(f'CREATE DATABASE "{test_env.DB_NAME}"')
    url = TEST_ENV["DATABASE_URL"]
    bouncer = None
    try:
        migrate.upgrade("head", test_env.DIRECT_DATABASE_URL)
        if test_env.PGBOUNCER_PORT is not None:
            bouncer = PgBouncer(test_env.PGBOUNCER_PORT, test_env.DB_NAME)
            bouncer.start()
        yield url
    finally:
        reset_engine()
        if bouncer is not None:
            bouncer.stop()
        _admin_exec(f'DROP DATABASE IF EXISTS "{test_env.DB_NAME}" WITH (FORCE)')
        test_env.release_redis_db(_REDIS_DB)


@pytest.fixture
def db_connection(database: str) -> Iterator[Connection]:
    conn = engine().connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """A session whose commits become savepoints of an outer, rolled-back transaction."""
    session = Session(bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def db_scope(db_session: Session) -> SessionScope:
    """Scopes on ``db_session``: each a fresh-looking session in its own savepoint.

    Like ``session_scope``: the scope starts with an empty identity map (work the test did
    before is committed to the outer transaction first, so a failing scope cannot undo the
    test's set-up), commits on a clean exit, rolls back on an exception, and leaves nothing
    in the identity map, so the next scope reads the rows again.
    """

    @contextmanager
    def scope() -> Iterator[Session]:
        if db_session.in_transaction():
            db_session.commit()
        db_session.expunge_all()
        try:
            with db_session.begin():
                yield db_session
        finally:
            db_session.expunge_all()

    return scope


def truncate_all() -> None:
    """Empty every application table (triggers off: the ledger refuses TRUNCATE)."""
    eng = engine()
    with eng.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname = ANY(:schemas) AND tablename <> 'alembic_version'"
                ),
                {"schemas": [*SCHEMAS, "public"]},
            )
            .scalars()
            .all()
        )
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))


@pytest.fixture
def clean_db(database: str) -> Iterator[str]:
    truncate_all()
    yield database
    truncate_all()


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(TEST_ENV["REDIS_URL"])


@pytest.fixture
def clean_redis(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    redis_client.flushdb()
    yield redis_client
    redis_client.flushdb()


@pytest.fixture
def proc_dir(tmp_path: Path) -> Path:
    d = tmp_path / "procs"
    d.mkdir()
    return d


def _reload_twilio_settings() -> None:
    # get_settings() caches the environment; drop that cache (an explicit override, if a test
    # installed one, stays) and the cached Twilio client so this process sees the new base URL.
    settings_module._load.cache_clear()
    twilio_client.reset_client()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio API on a free port, reached via TWILIO_API_BASE_URL by this process and its children."""
    fake = FakeTwilio(test_env.TEST_ACCOUNT_SID, test_env.TEST_AUTH_TOKEN).start()
    previous = os.environ.get("TWILIO_API_BASE_URL")
    os.environ["TWILIO_API_BASE_URL"] = fake.base_url
    _reload_twilio_settings()
    try:
        yield fake
    finally:
        if previous is None:
            os.environ.pop("TWILIO_API_BASE_URL", None)
        else:
            os.environ["TWILIO_API_BASE_URL"] = previous
        _reload_twilio_settings()
        fake.stop()


@pytest.fixture
def worker_proc(
    clean_db: str, clean_redis: redis.Redis, proc_dir: Path, fake_twilio: FakeTwilio
) -> Iterator[processes.Proc]:
    proc = processes.start_worker(proc_dir)
    yield proc
    proc.stop()


@pytest.fixture
def beat_proc(clean_db: str, proc_dir: Path) -> Iterator[processes.Proc]:
    proc = processes.start_beat(proc_dir)
    yield proc
    proc.stop()


@pytest.fixture
def receiver(clean_db: str, proc_dir: Path, fake_twilio: FakeTwilio) -> Iterator[str]:
    """Base URL of a real uvicorn receiver process."""
    proc, base = processes.start_receiver(proc_dir)
    yield base
    proc.stop()
