"""`msgworker run`: creates and migrates the development database, brings up receiver, worker
and beat, and stops them together (on SIGTERM, or when one of them dies)."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from tests.support import env as test_env
from tests.support.processes import VENV_BIN, Proc, free_port, wait_for
from worker import migrate
from worker.app import app

pytestmark = pytest.mark.e2e


@pytest.fixture
def fresh_db_name() -> Iterator[str]:
    """A database name that does not exist yet (dropped afterwards, whoever created it)."""
    name = f"msgworker_run_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def db_exists(name: str) -> bool:
    with psycopg.connect(test_env.PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def child_pids(proc: Proc) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"started (\w+) \(pid (\d+)\)", proc.log())}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def start_run(tmp: Path, db_name: str, port: int, **env: str) -> Proc:
    return Proc(
        "run",
        [
            str(VENV_BIN / "msgworker"),
            "run",
            "--port",
            str(port),
            "--state-dir",
            str(tmp / "state"),
            "--fake-twilio-port",
            str(free_port()),
        ],
        tmp / "run.log",
        env={
            "APP_ENV": "development",
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}",
            **env,
        },
    ).start()


def wait_ready(proc: Proc, port: int) -> None:
    def ready() -> bool:
        assert proc.alive, proc.log()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=60, what="msgworker run: /readyz", log=proc.log_path)
    wait_for(lambda: "ready: receiver" in proc.log(), timeout=30, what="ready banner", log=proc.log_path)


def test_run_creates_db_migrates_serves_and_stops_on_sigterm(
    fresh_db_name: str, clean_redis: redis.Redis, proc_dir: Path
) -> None:
    """From a database that does not exist to a working stack, and SIGTERM stops every child and exits 0."""
    assert not db_exists(fresh_db_name)
    port = free_port()
    # Default development credentials: run also serves the fake Twilio API.
    proc = start_run(proc_dir, fresh_db_name, port, TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="")
    try:
        wait_ready(proc, port)
        assert db_exists(fresh_db_name)
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{fresh_db_name}"
        assert migrate.current_revision(url) == migrate.head_revision()
        log = proc.log()
        assert f"created database postgresql+psycopg://postgres@127.0.0.1:5432/{fresh_db_name}" in log
        assert "fake Twilio at http://127.0.0.1:" in log

        # The worker child consumes tasks from the broker and reaches its database.
        token = uuid.uuid4().hex
        app.send_task("tasks.maintenance.ping", kwargs={"token": token})
        key = f"msgworker:ping:{token}"
        wait_for(lambda: bool(clean_redis.exists(key)), timeout=30, what="ping", log=proc.log_path)
        # Beat is up too.
        wait_for(lambda: "beat: Starting" in proc.log(), timeout=30, what="beat start", log=proc.log_path)

        pids = child_pids(proc)
        assert set(pids) == {"web", "worker", "beat"}
        proc.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert proc.popen.wait(timeout=60) == 0  # type: ignore[union-attr]
        for name, pid in pids.items():
            assert not alive(pid), f"{name} (pid {pid}) outlived msgworker run"
        assert "received SIGTERM: stopping everything" in proc.log()
    finally:
        proc.stop()


def test_run_stops_everything_when_one_child_dies(
    fresh_db_name: str, clean_redis: redis.Redis, proc_dir: Path
) -> None:
    """Killing beat makes run stop web and worker and exit non-zero, naming beat."""
    port = free_port()
    proc = start_run(proc_dir, fresh_db_name, port)
    try:
        wait_ready(proc, port)
        pids = child_pids(proc)
        os.kill(pids["beat"], signal.SIGKILL)
        assert proc.popen.wait(timeout=60) == 1  # type: ignore[union-attr]
        assert "beat exited with code -9: stopping the others" in proc.log()
        for name, pid in pids.items():
            assert not alive(pid), f"{name} (pid {pid}) outlived msgworker run"
    finally:
        proc.stop()


def test_run_explains_an_unreachable_database(proc_dir: Path) -> None:
    """With nothing listening at DATABASE_URL, run exits 1 with the URL and what to do, not a traceback."""
    proc = Proc(
        "run",
        [str(VENV_BIN / "msgworker"), "run", "--port", str(free_port())],
        proc_dir / "run.log",
        env={"APP_ENV": "development", "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"},
    ).start()
    try:
        assert proc.popen.wait(timeout=60) == 1  # type: ignore[union-attr]
        log = proc.log()
        assert "cannot reach or create the database postgresql+psycopg://postgres@127.0.0.1:9/nowhere" in log
        assert "fix: start PostgreSQL" in log
        assert "Traceback" not in log
    finally:
        proc.stop()
