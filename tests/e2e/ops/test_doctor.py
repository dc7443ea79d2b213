"""`msgworker doctor` as an operator runs it: a real process against real Postgres, Redis, a
real worker and the fake Twilio API."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support import env as test_env
from tests.support.processes import VENV_BIN, Proc
from worker import migrate
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "msgworker"), "doctor", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def line(output: str, name: str) -> str:
    return next(ln for ln in output.splitlines() if f"] {name}:" in ln)


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database that exists but has no migrations applied."""
    name = f"msgworker_doc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def test_doctor_passes_with_everything_running(worker_proc: Proc, fake_twilio: FakeTwilio) -> None:
    """With the database at head, Redis up, a worker running and Twilio answering, every check is ok and exit is 0."""
    proc = doctor("--worker-timeout", "15")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("settings", "database", "migrations", "broker", "worker", "twilio", "pii keys"):
        assert line(proc.stdout, name).startswith("[ ok ]"), proc.stdout
    assert "a worker ran a ping task" in proc.stdout
    assert f"{fake_twilio.base_url} reachable" in line(proc.stdout, "twilio")
    assert proc.stdout.rstrip().endswith("all checks passed")


def test_doctor_names_a_missing_database_and_how_to_create_it(clean_redis, fake_twilio: FakeTwilio) -> None:
    """DATABASE_URL naming a database that does not exist fails with one clear line and the createdb fix."""
    missing = f"msgworker_missing_{uuid.uuid4().hex[:8]}"
    proc = doctor("--worker-timeout", "1", DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{missing}")
    assert proc.returncode == 1
    db = line(proc.stdout, "database")
    assert db.startswith("[FAIL]")
    assert f'database "{missing}" does not exist' in db
    assert f"fix: create it: `createdb -h 127.0.0.1 -p 5432 {missing}`" in proc.stdout
    assert line(proc.stdout, "migrations").startswith("[skip]")
    assert "1 check(s) failed" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_fails_when_migrations_are_behind(empty_database: str, clean_redis, fake_twilio: FakeTwilio) -> None:
    """A database that is not at the code's head fails the migrations check and says to upgrade."""
    proc = doctor("--worker-timeout", "1", DATABASE_URL=empty_database)
    assert proc.returncode == 1
    assert f"database at base (empty), code at {migrate.head_revision()}" in line(proc.stdout, "migrations")
    assert "fix: run `msgworker db upgrade`" in proc.stdout


def test_doctor_warns_but_passes_without_a_worker(clean_db: str, clean_redis, fake_twilio: FakeTwilio) -> None:
    """No worker consuming tasks is a warning with the command to start one; the exit is still 0."""
    proc = doctor("--worker-timeout", "1")
    assert proc.returncode == 0, proc.stdout
    assert line(proc.stdout, "worker").startswith("[warn] worker: no worker answered a ping task within 1s")
    assert "fix: start one: `celery -A worker worker`" in proc.stdout
    assert "all checks passed (1 warning(s))" in proc.stdout


def test_doctor_reports_rejected_twilio_credentials(clean_db: str, clean_redis, fake_twilio: FakeTwilio) -> None:
    """A wrong auth token is caught by an authenticated call and reported with what to check."""
    proc = doctor("--worker-timeout", "1", TWILIO_AUTH_TOKEN="not-the-token")
    assert proc.returncode == 1
    assert "refused the credentials (HTTP 401)" in line(proc.stdout, "twilio")
    assert "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in proc.stdout


def test_doctor_reports_unreachable_twilio_and_broker(clean_db: str) -> None:
    """Unreachable Twilio API and broker each fail with their own line; the worker check is skipped."""
    proc = doctor(
        "--worker-timeout",
        "1",
        TWILIO_API_BASE_URL="http://127.0.0.1:9",
        CELERY_BROKER_URL="redis://127.0.0.1:9/0",
    )
    assert proc.returncode == 1
    assert line(proc.stdout, "twilio").startswith("[FAIL] twilio: cannot reach http://127.0.0.1:9")
    assert line(proc.stdout, "broker").startswith("[FAIL] broker: redis://127.0.0.1:9/0")
    assert line(proc.stdout, "worker").startswith("[skip]")
    assert "2 check(s) failed" in proc.stdout


def test_doctor_lists_every_production_settings_problem(clean_db: str, clean_redis) -> None:
    """In production with development secrets, doctor lists each problem (it reports, it does not refuse)."""
    proc = doctor(
        "--worker-timeout",
        "1",
        APP_ENV="production",
        META_APP_SECRET="dev-meta-app-secret",
        TWILIO_ACCOUNT_SID="AC123",
    )
    assert proc.returncode == 1
    out = proc.stdout
    assert "[FAIL] settings: META_APP_SECRET is the development default" in out
    assert "[FAIL] settings: PUBLIC_BASE_URL must be https:// in production" not in out  # it is https in tests
    assert "[FAIL] settings: TWILIO_ACCOUNT_SID must be 'AC' followed by 32 hex characters" in out
    assert line(out, "twilio").startswith("[FAIL]")


def test_doctor_reports_malformed_pii_keys(clean_db: str, clean_redis, fake_twilio: FakeTwilio) -> None:
    """A PII key that is not 32 bytes is reported with the expected format."""
    proc = doctor("--worker-timeout", "1", PII_KEYS="k1:c2hvcnQ")
    assert proc.returncode == 1
    assert "must be 32 bytes" in line(proc.stdout, "pii keys")
    assert "keyid:base64(32 bytes)" in proc.stdout
    assert "1 check(s) failed" in proc.stdout
