"""Quiet logs when idle: the real worker and beat, at the default INFO level, say nothing of ticks that did nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support.processes import Proc, wait_for
from worker.beat import TICK_TASKS
from worker.db import session_scope
from worker.outbox import enqueue

pytestmark = pytest.mark.e2e


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The structured lines of a process log (Celery's banner is plain text and skipped)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def about_ticks(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if any(task in str(line.get("event", "")) for task in TICK_TASKS)]


def test_idle_ticks_write_nothing_at_info_and_a_tick_that_works_says_so(
    worker_proc: Proc, beat_proc: Proc, fake_twilio: object
) -> None:
    """Five idle seconds of one-second release ticks leave no INFO line about a tick in the worker or beat
    log; the tick that then releases a text logs what it did."""
    time.sleep(5)  # five release ticks, a reconcile tick and a sweep, with nothing to do
    idle_worker = about_ticks(json_lines(worker_proc.log_path))
    idle_beat = about_ticks(json_lines(beat_proc.log_path))
    assert [line["event"] for line in idle_worker if line["level"] != "debug"] == []
    assert [line["event"] for line in idle_beat if line["level"] != "debug"] == []

    to = phone()
    with session_scope() as s:
        station = make_station(s)
        make_booking(s, make_customer(s, station, phone_e164=to))
        mid = enqueue(s, station=station, to=to, body="Your chef arrives at 6pm", purpose="transactional",
                      idempotency_key="quiet-ticks-1").message.id

    def sent() -> bool:
        with session_scope() as s:
            status = s.execute(text("SELECT status FROM core.outbound_messages WHERE id = :i"), {"i": mid}).scalar()
        return bool(status == "sent")

    wait_for(sent, timeout=30, what="the text sent", log=worker_proc.log_path)
    lines = json_lines(worker_proc.log_path)
    assert any(line["event"] == "outbox_released" and line["count"] == 1 for line in lines)
    worked = [line["event"] for line in about_ticks(lines) if line["level"] == "info"]
    assert any("tasks.send.release_due" in event and event.endswith(": 1") for event in worked), worked
    assert all("received" not in event for event in worked), worked
