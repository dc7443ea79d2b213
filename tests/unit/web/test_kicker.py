"""worker.web.kicker: every commit is followed by a kick, with far fewer kicks than commits."""

from __future__ import annotations

import threading
import time

from worker.web.kicker import Kicker


def test_every_commit_is_followed_by_a_kick_and_kicks_are_coalesced() -> None:
    """Commits from many threads: each one has a kick that started after it, and kicks are fewer than commits."""
    kick_starts: list[float] = []
    commits: list[float] = []
    lock = threading.Lock()

    def kick() -> None:
        kick_starts.append(time.monotonic())
        time.sleep(0.002)  # a Redis round trip

    kicker = Kicker(kick, window_seconds=0.005)

    def requests() -> None:
        for _ in range(200):
            with lock:
                commits.append(time.monotonic())
            kicker.committed()
            time.sleep(0.0005)

    threads = [threading.Thread(target=requests) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and (not kick_starts or kick_starts[-1] < max(commits)):
        time.sleep(0.01)
    assert all(any(k >= c for k in kick_starts) for c in commits)
    assert 0 < len(kick_starts) < len(commits) / 4


def test_a_failing_kick_does_not_stop_the_kicker() -> None:
    """An exception in one kick is logged and the next commit is still kicked."""
    calls: list[int] = []

    def kick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("redis down")

    kicker = Kicker(kick, window_seconds=0.001)
    kicker.committed()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not calls:
        time.sleep(0.005)
    time.sleep(0.01)
    kicker.committed()
    while time.monotonic() < deadline and len(calls) < 2:
        time.sleep(0.005)
    assert len(calls) == 2
