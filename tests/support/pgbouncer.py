"""A private PgBouncer in transaction pooling mode in front of the machine's PostgreSQL.

With ``MSGWORKER_TEST_PGBOUNCER=1`` a test run (tests/support/env.py) points every process's
``DATABASE_URL`` at one of these, so the receiver, the worker, beat and the test itself reach
PostgreSQL the way many hosts would when server connections run out: each transaction on
whichever server session is free. The pool is kept small (``POOL_SIZE``) so that clients
really do take turns on sessions and anything that relies on session state fails.

Debian's ``pgbouncer`` package (1.18: no protocol-level prepared statements, no ``options``
start-up parameter) is what scripts/lib.sh installs. PgBouncer refuses to run as root, so as
root (CI) it runs as the ``postgres`` user through ``runuser``, like the fault suite's clusters.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import wait_for

__all__ = ["POOL_SIZE", "PgBouncer", "pgbouncer_bin"]

POOL_SIZE = 10
# What the worker's connections ask for at start-up (worker/db.py), given to every server
# session by the pool instead, because PgBouncer refuses the ``options`` parameter.
_CONNECT_QUERY = "SET statement_timeout = 30000; SET lock_timeout = 10000"


def pgbouncer_bin() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        raise RuntimeError("pgbouncer is not installed (Debian package pgbouncer; scripts/lib.sh installs it)")
    return found


class PgBouncer:
    """``start()``/``stop()`` a bouncer on ``port`` serving ``database`` from ``upstream_port``."""

    def __init__(
        self,
        port: int,
        database: str,
        *,
        upstream_host: str = "127.0.0.1",
        upstream_port: int = 5432,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.pool_size = pool_size
        self.port = port
        self.database = database
        self.upstream = (upstream_host, upstream_port)
        self.root = Path(tempfile.mkdtemp(prefix="msgworker-pgbouncer-"))
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "pgbouncer.log"

    def _write_config(self) -> Path:
        host, port = self.upstream
        (self.root / "userlist.txt").write_text('"postgres" ""\n"root" ""\n')
        ini = self.root / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"{self.database} = host={host} port={port} dbname={self.database} connect_query='{_CONNECT_QUERY}'\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            "max_client_conn = 1000\n"
            # A client waiting for a server session longer than this gets an error, not a hang.
            "query_wait_timeout = 30\n"
            "server_lifetime = 3600\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
            f"pidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres")
        return ini

    def start(self) -> None:
        ini = self._write_config()
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [*as_postgres, pgbouncer_bin(), str(ini)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

        def listening() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({self.popen.returncode}):\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(listening, timeout=15, what="pgbouncer", log=self.log_path)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            # runuser passes the signal on; SIGINT is PgBouncer's immediate shutdown.
            os.killpg(self.popen.pid, 2)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
