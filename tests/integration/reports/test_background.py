"""The export's helpers that run beside it: the ledger check's child process and the prefetching thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.factories import make_customer, make_station, phone
from tests.support.consent import make_inbound
from tests.support.reports import export
from worker.audit import Actor
from worker.consent.inbound import handle_inbound
from worker.consent.staff import staff_opt_out
from worker.db import session_scope
from worker.reports import beside
from worker.reports.beside import BackgroundCheck
from worker.reports.chain import check_range
from worker.reports.prefetch import prefetched
from worker.reports.snapshot import read_snapshot

NOW = datetime.now(UTC)
PARAMS = {"start": NOW - timedelta(days=1), "end": NOW + timedelta(days=1)}


def test_the_child_reads_the_exported_snapshot_and_agrees_with_the_in_process_check(clean_db: str) -> None:
    """The child sees the snapshot, not later commits, and returns what check_range gives in process."""
    for _ in range(3):
        with session_scope() as s:
            staff_opt_out(s, phone(), actor=Actor.cli("amy"))
    with session_scope() as session, read_snapshot(session) as snap:
        check = BackgroundCheck(snap.exported, PARAMS)
        with session_scope() as other:  # committed after the snapshot: neither check may see it
            staff_opt_out(other, phone(), actor=Actor.cli("amy"))
        child = check.result()
        local = check_range(snap.conn, PARAMS)
    assert child.events == local.events == 3
    assert (child.first, child.last, child.head, child.ok) == (local.first, local.last, local.head, True)


def test_a_failed_child_fails_the_check(clean_db: str) -> None:
    """A child that cannot import the snapshot exits non-zero, and the caller gets an error naming it."""
    with pytest.raises(RuntimeError, match="ledger check process failed"):
        BackgroundCheck("00000003-0000001B-1", PARAMS).result()


def test_closing_the_rows_early_stops_the_thread_and_frees_the_connection(clean_db: str) -> None:
    """A consumer that stops after a few rows closes the generator; the connection is usable right after."""
    with session_scope() as session, read_snapshot(session) as snap:
        with snap.conn.cursor(name="many") as cur:
            cur.execute("SELECT generate_series(1, 10000)")
            rows = prefetched(cur, 100)
            first = [next(rows)[0] for _ in range(5)]
            rows.close()
        assert first == [1, 2, 3, 4, 5]
        assert snap.conn.execute("SELECT 42").fetchone() == (42,)


def test_the_second_process_share_of_the_rows_gives_the_same_report(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows split between the export and its second process: the same CSV bytes and the same figures.

    Revocations of several kinds with violations (a send after an opt-out), so every column and
    every figure the merge adds up is exercised; the split is forced onto this small range.
    """
    with session_scope() as s:
        station = make_station(s)
        for body in ("STOP", "stop texting me", "Cancel", "STOP", "=SUM(1+1) stop", "UNSUBSCRIBE"):
            handle_inbound(s, make_inbound(s, station, make_customer(s, station, phone_e164=phone()), body))
        for _ in range(3):
            staff_opt_out(s, phone(), actor=Actor.cli("amy"))
    today = datetime.now(UTC).date()
    whole = export(tmp_path, today, today, name="whole.zip")
    monkeypatch.setattr(beside, "MIN_SPLIT_SPAN", 1)
    with session_scope() as s:
        bounds = s.execute(text("SELECT min(seq), max(seq) FROM compliance.consent_events")).one()
    own, tail = beside.split((bounds[0], bounds[1]))
    assert own is not None
    assert tail is not None
    assert own[1] + 1 == tail.lo  # the split is really taken
    shared = export(tmp_path, today, today, name="shared.zip")
    assert shared.csv_bytes == whole.csv_bytes
    assert len(shared.rows) == len(whole.rows) >= 8
    for key in ("figures", "violations", "csv"):
        assert shared.summary[key] == whole.summary[key]
    assert shared.chain["status"] == whole.chain["status"] == "ok"
    assert [p.name for p in tmp_path.iterdir()].count("shared.zip") == 1
