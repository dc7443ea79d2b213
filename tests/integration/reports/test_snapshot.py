"""The export's snapshot: one consistent REPEATABLE READ view, read-only while reading, its audit row after."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from tests.factories import phone
from worker.audit import Actor
from worker.consent.staff import staff_opt_out
from worker.db import session_scope
from worker.reports.snapshot import read_snapshot

COUNT = "SELECT count(*) FROM compliance.consent_events"


def _opt_out() -> None:
    with session_scope() as s:
        staff_opt_out(s, phone(), actor=Actor.cli("amy"))


def test_rows_committed_during_an_export_are_not_seen(clean_db: str) -> None:
    """An event committed by another transaction while the snapshot is open is invisible to it, to the end."""
    _opt_out()
    with session_scope() as session, read_snapshot(session) as snap:
        before = snap.conn.execute(COUNT).fetchone()
        _opt_out()
        after = snap.conn.execute(COUNT).fetchone()
        assert snap.conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
    assert before == after == (1,)
    with session_scope() as session:
        assert session.execute(text(COUNT)).scalar_one() == 2


def test_reading_is_read_only_and_the_audit_row_is_written_after(clean_db: str) -> None:
    """Inside the snapshot PostgreSQL refuses writes; after it, the same transaction writes its audit row."""
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), session_scope() as session, \
            read_snapshot(session) as snap:
        snap.conn.execute("INSERT INTO public.audit_logs (actor, action, resource_type) VALUES ('x', 'VIEW', 'probe')")
    with session_scope() as session:
        with read_snapshot(session) as snap:
            taken = snap.taken_at
        session.execute(text("INSERT INTO public.audit_logs (actor, action, resource_type) "
                             "VALUES ('cli:amy', 'VIEW', 'probe')"))
        same_snapshot = session.execute(text("SELECT transaction_timestamp() <= :t"), {"t": taken}).scalar_one()
    assert same_snapshot
    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM public.audit_logs WHERE resource_type = 'probe'"))\
            .scalar_one() == 1
