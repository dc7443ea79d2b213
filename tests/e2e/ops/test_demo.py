"""`msgworker demo` on a freshly migrated database: every scripted step runs and shows its ledger and outbox rows."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support import env as test_env
from tests.support.processes import VENV_BIN

pytestmark = pytest.mark.e2e


@pytest.fixture
def fresh_db() -> Iterator[str]:
    name = f"msgworker_demo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def msgworker(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db, "LOG_FORMAT": "console"}
    return subprocess.run(
        [str(VENV_BIN / "msgworker"), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_demo_plays_the_scripted_day_twice(fresh_db: str) -> None:
    """After `db upgrade`, the demo exits 0 and prints each step with its decisions; a second run works too."""
    refused = msgworker("demo", db=fresh_db)
    assert refused.returncode == 1
    assert "msgworker db upgrade" in refused.stderr

    assert msgworker("db", "upgrade", db=fresh_db).returncode == 0
    for _ in range(2):
        run = msgworker("demo", db=fresh_db)
        assert run.returncode == 0, run.stderr[-3000:]
        out = run.stdout
        for title in (
            "Step 1: an inbound question",
            "Step 2: STOP, and its one confirmation",
            "Step 3: a marketing send to the opted-out number: blocked",
            "Step 4: a quiet-hours deferral",
            "Step 5: START",
            "Step 6: a transactional send",
        ):
            assert title in out
        assert "opt_out purpose=all" in out
        assert "reason=opted_out" in out
        assert "reason=quiet_hours" in out
        assert "opt_in purpose=all" in out
        assert out.count("twilio   received") == 3
        assert "3 texts reached the fake Twilio" in out
        # Numbers are masked in the output.
        assert "+1212555" not in out
