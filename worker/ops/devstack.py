"""``msgworker run``: the whole stack (receiver, worker, beat) as child processes of one command.

For development: one terminal, one Ctrl-C. The children are the same commands production
runs separately (``msgworker web``, ``celery -A worker worker``, ``celery -A worker beat``),
so nothing here is a development-only code path inside them.

Lifecycle rules:
- each child runs in its own session, so a terminal's Ctrl-C reaches only this supervisor,
  which then stops the children in order (SIGTERM, then SIGKILL of the child's whole process
  group after a grace period: a celery worker's pool processes go with it);
- if one child exits on its own, the others are stopped and the supervisor exits non-zero,
  so a half-running stack never looks healthy;
- every child's output is copied to ours, each line prefixed with the child's name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

import structlog
from sqlalchemy import create_engine, make_url, pool, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from worker.errors import InvalidInput

__all__ = ["ChildSpec", "Supervisor", "ensure_database", "stack_specs"]

log = structlog.get_logger(__name__)


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True when it was created.

    Connects to the server's ``postgres`` maintenance database as the same user. Used in
    development only: production databases are provisioned, not conjured.
    """
    target = make_url(url)
    name = target.database
    if not name:
        raise InvalidInput("DATABASE_URL names no database", field="DATABASE_URL")
    last_error: Exception | None = None
    for maintenance_db in ("postgres", "template1"):
        eng = create_engine(
            target.set(database=maintenance_db),
            poolclass=pool.NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 5},
        )
        try:
            with eng.connect() as conn:
                if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                    return False
                quoted = conn.dialect.identifier_preparer.quote(name)
                try:
                    conn.execute(text(f"CREATE DATABASE {quoted}"))
                except ProgrammingError as exc:  # created concurrently by someone else
                    if "already exists" in str(exc):
                        return False
                    raise
                return True
        except OperationalError as exc:
            last_error = exc
        finally:
            eng.dispose()
    assert last_error is not None
    raise last_error


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)


def stack_specs(
    *, host: str, port: int, concurrency: int, schedule_path: str, env: dict[str, str] | None = None
) -> list[ChildSpec]:
    """The three processes of the stack, as production runs them."""
    py = sys.executable
    extra = env or {}
    return [
        ChildSpec("web", [py, "-m", "worker.cli", "web", "--host", host, "--port", str(port)], extra),
        ChildSpec(
            "worker",
            [py, "-m", "celery", "-A", "worker", "worker", "-l", "INFO", f"--concurrency={concurrency}"],
            extra,
        ),
        ChildSpec(
            "beat",
            [py, "-m", "celery", "-A", "worker", "beat", "-l", "INFO", "--schedule", schedule_path],
            extra,
        ),
    ]


@dataclass
class _Child:
    spec: ChildSpec
    popen: subprocess.Popen[bytes]
    pump: threading.Thread


class Supervisor:
    """Start children, relay their output, and stop them all together."""

    def __init__(self, specs: Sequence[ChildSpec], *, stop_timeout: float = 20.0, out: IO[str] | None = None) -> None:
        self.specs = list(specs)
        self.stop_timeout = stop_timeout
        self.out = out or sys.stdout
        self.children: list[_Child] = []
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._width = max((len(s.name) for s in self.specs), default=4)

    def say(self, line: str) -> None:
        with self._write_lock:
            self.out.write(f"{'run':<{self._width}} | {line}\n")
            self.out.flush()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        prefix = f"{name:<{self._width}} | "
        for raw in iter(stream.readline, b""):
            with self._write_lock:
                self.out.write(prefix + raw.decode(errors="replace").rstrip("\n") + "\n")
                self.out.flush()
        stream.close()

    def start(self) -> None:
        for spec in self.specs:
            popen = subprocess.Popen(  # noqa: S603 - argv built by stack_specs, not from input
                list(spec.argv),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **spec.env},
                start_new_session=True,
            )
            assert popen.stdout is not None
            pump = threading.Thread(target=self._pump, args=(spec.name, popen.stdout), daemon=True)
            pump.start()
            self.children.append(_Child(spec, popen, pump))
            self.say(f"started {spec.name} (pid {popen.pid}): {' '.join(spec.argv[1:])}")

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None and not self._stop.is_set():
            self.say(f"received {signal.Signals(signum).name}: stopping everything")
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def dead_child(self) -> _Child | None:
        return next((c for c in self.children if c.popen.poll() is not None), None)

    def wait(self) -> int:
        """Block until a stop is requested (0) or a child exits on its own (1); then stop all."""
        code = 0
        while not self._stop.wait(0.2):
            dead = self.dead_child()
            if dead is not None:
                self.say(f"{dead.spec.name} exited with code {dead.popen.returncode}: stopping the others")
                code = 1
                break
        self.stop_all()
        return code

    def stop_all(self) -> None:
        for child in self.children:
            if child.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                child.popen.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.say(f"{child.spec.name} did not stop within {self.stop_timeout:g}s: killing it")
            # The group goes too: a celery worker's pool children must not outlive it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.popen.pid, signal.SIGKILL)
            child.popen.wait()
            child.pump.join(timeout=2)
        self.say("stopped: " + ", ".join(f"{c.spec.name}={c.popen.returncode}" for c in self.children))
