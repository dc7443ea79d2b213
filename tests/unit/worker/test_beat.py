"""Which tick results count as "found nothing" (their Celery lines drop to DEBUG, worker/beat.py)."""

from __future__ import annotations

import logging

import pytest
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from worker.beat import IdleTickFilter, found_nothing


@pytest.mark.parametrize(
    ("result", "nothing"),
    [
        (0, True),
        (None, True),
        ({"found": 0, "requeued": 0, "waiting": 0}, True),
        ({"gave_up": 0, "stale": 0, "orphans_attached": 0}, True),
        (3, False),
        ({"found": 0, "requeued": 1, "waiting": 0}, False),
        ({"gave_up": 0, "stale": 2, "drain": {"processed": 2}}, False),
        ("text", False),
    ],
)
def test_found_nothing(result: object, nothing: bool) -> None:
    """Zero counts, at any depth, are nothing; any non-zero count or unknown value is news."""
    assert found_nothing(result) is nothing


def _record(msg: str, data: dict[str, object]) -> logging.LogRecord:
    record = logging.LogRecord("celery.app.trace", logging.INFO, __file__, 1, msg, (data,), None)
    record.data = data
    return record


def test_filter_drops_idle_tick_lines_at_info_and_keeps_the_rest() -> None:
    """At INFO an idle tick's received/succeeded lines are dropped; a tick that worked and other tasks are kept."""
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.INFO)
    try:
        keep = IdleTickFilter().filter
        assert not keep(_record(LOG_RECEIVED, {"name": "tasks.send.release_due", "id": "1"}))
        assert not keep(_record(LOG_SUCCESS, {"name": "tasks.send.release_due", "id": "1", "return_value": "0"}))
        assert keep(_record(LOG_SUCCESS, {"name": "tasks.send.release_due", "id": "1", "return_value": "2"}))
        assert keep(_record(LOG_RECEIVED, {"name": "tasks.ingest.drain_inbox", "id": "1"}))
    finally:
        root.setLevel(saved)
