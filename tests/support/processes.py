"""Start and stop the real processes the end-to-end tests talk to.

Each process writes its output to a log file under the test's tmp dir; on a failed wait,
the log tail is put in the error so a red test says why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], bool],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- log tail ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}{tail}")


@dataclass
class Proc:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (celery's pool children too)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive:
            return
        self.kill(signal.SIGTERM)
        try:
            assert self.popen is not None
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            assert self.popen is not None
            self.popen.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_worker(tmp: Path, *, concurrency: int = 2, env: dict[str, str] | None = None, name: str = "worker") -> Proc:
    proc = Proc(
        name,
        [
            str(VENV_BIN / "celery"),
            "-A",
            "worker",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "-l",
            "INFO",
        ],
        tmp / f"{name}.log",
        env=env or {},
    ).start()
    wait_worker_ready(proc)
    return proc


def wait_worker_ready(proc: Proc, timeout: float = 30.0) -> None:
    """Round-trip a ping task through broker, worker, database and Redis (the worker's own, from its env)."""
    from worker.app import app

    token = uuid.uuid4().hex
    env = {**os.environ, **proc.env}
    with app.connection_for_write(env["CELERY_BROKER_URL"]) as connection:
        app.send_task("tasks.maintenance.ping", kwargs={"token": token}, connection=connection)
    client = redis.Redis.from_url(env["REDIS_URL"])
    wait_for(
        lambda: bool(client.exists(f"msgworker:ping:{token}")) or not proc.alive,
        timeout=timeout,
        what="worker to run a ping task",
        log=proc.log_path,
    )
    # Another worker already consuming the queue may have run that ping; only this process's own
    # "<hostname> ready." line says that it consumes too (tests that race two workers need both).
    # A worker that died meanwhile ends this wait at once, and the check below says so.
    wait_for(
        lambda: " ready." in proc.log() or not proc.alive,
        timeout=timeout,
        what="worker to say it is ready",
        log=proc.log_path,
    )
    if not proc.alive:
        raise RuntimeError(f"worker exited early:\n{proc.log()[-3000:]}")


def start_beat(tmp: Path, env: dict[str, str] | None = None) -> Proc:
    return Proc(
        "beat",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "worker",
            "beat",
            "-l",
            "INFO",
            "--schedule",
            str(tmp / "celerybeat-schedule"),
        ],
        tmp / "beat.log",
        env=env or {},
    ).start()


def start_receiver(tmp: Path, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(
        "receiver",
        [str(VENV_BIN / "msgworker"), "web", "--host", "127.0.0.1", "--port", str(port)],
        tmp / "receiver.log",
        env=env or {},
    ).start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not proc.alive:
            raise RuntimeError(f"receiver exited early:\n{proc.log()[-3000:]}")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, what="receiver /healthz", log=proc.log_path)
    return proc, base
