"""Consent with real processes: STOP/START racing in two processes; the review deadline tick in a worker."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import phone
from tests.support.processes import Proc, wait_for
from worker import pii
from worker.consent.ledger import verify_ledger
from worker.consent.state import covering_state
from worker.db import session_scope
from worker.models import ConsentEvent

pytestmark = pytest.mark.e2e

ROUNDS = 150
ROOT = Path(__file__).resolve().parents[3]


def test_stop_and_start_racing_in_two_processes_match_the_ledger(clean_db: str, tmp_path: Path) -> None:
    """Two processes record opt_out / opt_in for one number concurrently; the state is the replay of the ledger."""
    number = phone()
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.consent.racer", kind, number, str(ROUNDS), str(start_at)],
            cwd=ROOT,
            stdout=(tmp_path / f"{kind}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for kind in ("opt_out", "opt_in")
    ]
    for proc in procs:
        logs = (tmp_path / "opt_out.log", tmp_path / "opt_in.log")
        assert proc.wait(timeout=240) == 0, "".join(p.read_text() for p in logs if p.exists())
    index = pii.blind_index(number, kind="phone")
    with session_scope() as session:
        events = list(
            session.execute(
                select(ConsentEvent.kind, ConsentEvent.seq, ConsentEvent.evidence)
                .where(ConsentEvent.phone_index == index)
                .order_by(ConsentEvent.seq)
            )
        )
        assert len(events) == 2 * ROUNDS
        # The two writers really interleaved (otherwise this proves nothing about races).
        switches = sum(1 for a, b in itertools.pairwise(events) if a.kind != b.kind)
        assert switches >= 10, f"only {switches} alternations: the processes did not overlap"
        # Chain intact and consent_state equal to replaying the events in seq order.
        report = verify_ledger(session)
        assert report.ok, report.as_dict()
        # And the visible state is the last event's.
        state = covering_state(session, index, None)
        assert state.opted_out is (events[-1].kind == "opt_out")


def test_review_deadline_tick_runs_in_a_real_worker(worker_proc: Proc) -> None:
    """tasks.consent.expire_reviews, sent through the broker to a real worker, converts an overdue item."""
    from datetime import UTC, datetime

    from tests.factories import make_customer, make_station
    from tests.support.consent import make_inbound
    from worker.app import app
    from worker.consent.inbound import handle_inbound
    from worker.models import ReviewItem

    with session_scope() as session:
        station = make_station(session)
        customer = make_customer(session, station)
        msg = make_inbound(session, station, customer, "Dont text me at work",
                           received_at=datetime(2025, 1, 2, 15, tzinfo=UTC))
        handle_inbound(session, msg)
        item_id = session.execute(select(ReviewItem.id).where(ReviewItem.message_id == msg.message_id)).scalar_one()

    def expired() -> bool:
        with session_scope() as session:
            return session.execute(select(ReviewItem.status).where(ReviewItem.id == item_id)).scalar_one() == (
                "expired_opt_out"
            )

    app.send_task("tasks.consent.expire_reviews")
    wait_for(expired, timeout=60, what="review item expired by the worker", log=worker_proc.log_path)
    with session_scope() as session:
        assert customer.phone_index is not None
        assert covering_state(session, customer.phone_index, station.id).opted_out
