"""STOP and START for one number, racing in two real processes, end where the ledger says."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import phone
from worker import pii
from worker.consent.ledger import verify_ledger
from worker.consent.state import covering_state
from worker.db import session_scope
from worker.models import ConsentEvent

pytestmark = pytest.mark.e2e

ROUNDS = 150
ROOT = Path(__file__).resolve().parents[2]


def test_stop_and_start_racing_in_two_processes_match_the_ledger(clean_db: str, tmp_path: Path) -> None:
    """Two processes record opt_out / opt_in for one number concurrently; the state is the replay of the ledger."""
    number = phone()
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.consent_racer", kind, number, str(ROUNDS), str(start_at)],
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
