"""Private PostgreSQL clusters and Redis servers, so a test can stop, freeze or restart "the database"
or "the broker" without touching the shared services other test runs use.

A cluster is made by the machine's own PostgreSQL binaries (initdb, postgres) on a free port in a
temporary directory. PostgreSQL refuses to run as root, so as root (CI) its commands run as the
``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import redis

from tests.support.processes import free_port, wait_for

__all__ = ["BlackHole", "OwnPostgres", "OwnRedis", "postgres_bin"]


def postgres_bin() -> Path:
    """The newest server binaries on the machine (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
        return Path(on_path).parent
    return found[-1].parent


def _as_postgres_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


class OwnPostgres:
    """A private cluster: ``create()`` (initdb) or ``copy_of()`` a stopped one, then start/stop/freeze/thaw."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.database = "msgworker"

    @classmethod
    def create(cls) -> OwnPostgres:
        server = cls(cls._new_root())
        subprocess.run(
            [*_as_postgres_user(), str(postgres_bin() / "initdb"), "-D", str(server.data), "-A", "trust",
             "-U", "postgres", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )
        return server

    @classmethod
    def copy_of(cls, template: OwnPostgres) -> OwnPostgres:
        """A new cluster with the template's data (the template must be stopped)."""
        server = cls(cls._new_root())
        subprocess.run(["cp", "-a", str(template.data), str(server.data)], check=True)
        return server

    @staticmethod
    def _new_root() -> Path:
        # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
        root = Path(tempfile.mkdtemp(prefix="msgworker-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        return root

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL, as DATABASE_URL takes it."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_postgres_user(), str(postgres_bin() / "pg_ctl"), "-D", str(self.data), *args],
            check=True, capture_output=True, timeout=60,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} -c fsync=off"
        self._ctl("start", "-w", "-l", str(self.log_path), "-o", opts)

    def stop(self) -> None:
        self.thaw()  # a stopped postmaster cannot shut down
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "fast", "-w")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast", "-w", "-l", str(self.log_path))

    def create_database(self) -> None:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')  # type: ignore[arg-type]

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: what a storage stall or a network black hole looks like."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGSTOP)
        for child in _children(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)

    def thaw(self) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            pid = self.postmaster_pid()
            for child in _children(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGCONT)
            os.kill(pid, signal.SIGCONT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class OwnRedis:
    """A private redis-server with no persistence, so a test can stop "the broker"."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.tmp / "redis.log").open("ab")
        self.popen = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def up() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping())
            except redis.RedisError:
                return False

        wait_for(up, timeout=10, what="private redis-server")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


class BlackHole:
    """A TCP port that completes the handshake (the kernel does) and then never says a word:
    what a client sees of a server that froze, or of a network that drops every answer."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])

    def close(self) -> None:
        self._sock.close()
