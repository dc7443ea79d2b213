"""The worker's engine gives up on a database that does not answer in time, and recovers on its own
(worker/db_deadlines.py). A statement that sleeps longer than the answer limit stands in for a server
that stopped answering; tests/fault freezes a real one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from worker.db import engine, reset_engine
from worker.settings import get_settings, set_settings


@pytest.fixture
def impatient(database: str) -> Iterator[Engine]:
    """The process's engine, built with a 1 s answer limit."""
    set_settings(get_settings().model_copy(update={"DATABASE_ANSWER_TIMEOUT": 1.0}))
    reset_engine()
    try:
        yield engine()
    finally:
        set_settings(None)
        reset_engine()


def test_no_answer_within_the_limit_fails_fast_and_the_next_unit_of_work_reconnects(impatient: Engine) -> None:
    """A 3 s statement fails after about 1 s, its connection is dropped from the pool (logged as
    database_no_answer), and the next statement on the same engine gets a fresh connection and works."""
    with impatient.connect() as conn:
        first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        started = time.monotonic()
        with capture_logs() as logs, pytest.raises(OperationalError) as caught:
            conn.execute(text("SELECT pg_sleep(3)"))
        took = time.monotonic() - started
    assert 0.9 < took < 2.0
    assert caught.value.connection_invalidated
    assert [e["event"] for e in logs] == ["database_no_answer"]
    with impatient.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first_pid
