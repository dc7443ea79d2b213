"""The migration history builds, tears down and rebuilds an empty database."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support import env as test_env
from worker import migrate
from worker.models import Base


@pytest.fixture
def empty_db_url() -> str:
    name = f"msgworker_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _tables(url: str) -> set[str]:
    eng = create_engine(url)
    try:
        insp = inspect(eng)
        return {
            f"{s}.{t}"
            for s in ("identity", "core", "compliance", "marketing", "feedback", "public")
            if s in insp.get_schema_names()
            for t in insp.get_table_names(schema=s)
        }
    finally:
        eng.dispose()


def test_upgrade_downgrade_upgrade_on_empty_database(empty_db_url: str) -> None:
    """Head builds every model table; base removes them all; head builds them again."""
    expected = {f"{t.schema or 'public'}.{t.name}" for t in Base.metadata.sorted_tables}
    migrate.upgrade("head", empty_db_url)
    assert expected <= _tables(empty_db_url)
    migrate.downgrade("base", empty_db_url)
    assert _tables(empty_db_url) <= {"public.alembic_version"}
    migrate.upgrade("head", empty_db_url)
    assert expected <= _tables(empty_db_url)
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()


def test_head_leaves_every_constraint_validated_and_every_index_valid(db_session) -> None:
    """Migrations that add checks NOT VALID or build indexes CONCURRENTLY (0002) finish the job."""
    unvalidated = db_session.execute(
        text("SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint c "
             "JOIN pg_namespace n ON n.oid = c.connamespace "
             "WHERE NOT c.convalidated AND n.nspname NOT LIKE 'pg_%' AND n.nspname <> 'information_schema'")
    ).scalars().all()
    invalid = db_session.execute(
        text("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid OR NOT indisready")
    ).scalars().all()
    assert (unvalidated, invalid) == ([], [])
    held_checks = db_session.execute(
        text("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'ck_outbound_messages_%' AND convalidated")
    ).scalar_one()
    assert held_checks >= 4


def test_0002_rerun_after_a_failure_past_its_commit(empty_db_url: str) -> None:
    """0002 commits its ALTER before validating and building the index CONCURRENTLY; a run that
    failed after that commit (columns there, a check not valid, an invalid index left by an
    interrupted concurrent build) must simply be run again."""
    migrate.upgrade("0001", empty_db_url)
    dsn = empty_db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE core.outbound_messages ADD COLUMN recipient_state varchar(2), "
                     "ADD COLUMN location_source varchar(16)")
        conn.execute("ALTER TABLE core.outbound_messages ADD CONSTRAINT ck_outbound_messages_recipient_state "
                     "CHECK (recipient_state ~ '^[A-Z]{2}$') NOT VALID")
        # A failed concurrent build leaves its index behind, invalid, under the name 0002 uses.
        conn.execute("CREATE TABLE core.dups (x int)")
        conn.execute("INSERT INTO core.dups VALUES (1), (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_outbound_messages_held ON core.dups (x)")
    migrate.upgrade("head", empty_db_url)
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()
    with psycopg.connect(dsn, autocommit=True) as conn:
        index = conn.execute(
            "SELECT indrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indexrelid = to_regclass('core.ix_outbound_messages_held')"
        ).fetchall()
        assert index == [("core.outbound_messages", True)]
        checks = conn.execute(
            "SELECT conname, convalidated FROM pg_constraint "
            "WHERE conrelid = 'core.outbound_messages'::regclass AND conname IN ("
            "'ck_outbound_messages_recipient_state', 'ck_outbound_messages_location_source', "
            "'ck_outbound_messages_located', 'ck_outbound_messages_reviewed') ORDER BY conname"
        ).fetchall()
        assert [c[1] for c in checks] == [True] * 4
        conn.execute("DROP TABLE core.dups")


def test_single_linear_head() -> None:
    """One linear history: exactly one head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config("postgresql://unused"))
    assert len(script.get_heads()) == 1


def test_existing_database_checks_hold(db_session) -> None:
    """bookings keeps the existing database's checks: adults > 0, deposit >= 0, total >= deposit."""
    from sqlalchemy.exc import IntegrityError

    from tests.factories import make_customer, make_station

    station = make_station(db_session)
    customer = make_customer(db_session, station)
    for adults, deposit, total in ((0, 0, 0), (2, -1, 0), (2, 500, 100)):
        with pytest.raises(IntegrityError), db_session.begin_nested():
            db_session.execute(
                text(
                    "INSERT INTO core.bookings (customer_id, station_id, date, party_adults, "
                    "deposit_due_cents, total_due_cents) VALUES (:c, :s, now(), :a, :d, :t)"
                ),
                {"c": customer.id, "s": station.id, "a": adults, "d": deposit, "t": total},
            )
