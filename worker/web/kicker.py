"""One receiver process's drain kicks, coalesced off the request path.

Every stored webhook needs a kick after its commit (worker/ingest/kick.py), but a kick is a
Redis round trip, and at hundreds of webhooks a second most of them find the key already
taken. So a request only marks "a commit happened" and returns; one background thread per
process turns the marks into kicks:

    request:  commit; with lock: dirty = True; notify
    kicker:   with lock: wait for dirty; dirty = False
              kick()                       # SET NX (+ publish)
              sleep(window)

A commit that marked ``dirty`` before the kicker cleared it is covered by the kick that
follows the clear (issued after that commit); a commit that marks it after the clear gets
the next round. So every commit is followed by a kick, as before, at most ``window``
later, and the process does about one Redis round trip per window instead of one per
webhook.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import structlog

__all__ = ["Kicker"]

log = structlog.get_logger(__name__)


class Kicker:
    def __init__(self, kick: Callable[[], object], *, window_seconds: float = 0.005) -> None:
        self._kick = kick
        self._window = window_seconds
        self._cond = threading.Condition()
        self._dirty = False
        self._owner_pid: int | None = None
        self.kicks = 0  # how many kicks were made (tests, diagnostics)

    def committed(self) -> None:
        """Called after each successful commit: a kick will follow, at most one window later."""
        self._ensure_thread()
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def _ensure_thread(self) -> None:
        pid = os.getpid()
        if self._owner_pid == pid:
            return
        with self._cond:
            if self._owner_pid != pid:  # first use in this process (or after a fork)
                self._owner_pid = pid
                threading.Thread(target=self._run, name="drain-kicker", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty:
                    self._cond.wait()
                self._dirty = False
            try:
                self._kick()
                self.kicks += 1
            except Exception:  # the kick logs its own failures; the thread must survive anything
                log.exception("drain_kicker_error")
            time.sleep(self._window)
