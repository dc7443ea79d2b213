"""Same-run references for benchmarks: how fast this machine is right now.

This machine's speed varies 2-3x from day to day and with other engineers' work on the same
2 cores, so a figure means little without a reference timed in the same run: a fixed
pure-Python loop (the interpreter's speed) and a prepared ``select 1`` round trip (the
database and the scheduler). Neither ever changes, so comparing them across rows in
bench/RESULTS.md shows how fast the machine was when each row was measured.
"""

from __future__ import annotations

import statistics
import time

import psycopg


def reference_loop_ms(rounds: int = 5) -> float:
    """Best of ``rounds`` timings of a fixed pure-Python loop (string split, dict and set work)."""
    words = ("stop", "texting", "me", "please", "the", "party", "is", "at", "6pm")
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        seen: dict[str, int] = {}
        for i in range(200_000):
            text = words[i % 9] + " " + words[(i * 7) % 9]
            for w in text.split():
                seen[w] = seen.get(w, 0) + 1
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def select1_round_trip_us(conninfo: str, n: int = 2000) -> tuple[float, float]:
    """(median, p99) microseconds of a prepared ``select 1`` on one connection, ``n`` times."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for _ in range(50):  # warm-up (prepare=True prepares it on the first execution)
            conn.execute("select 1", prepare=True).fetchone()
        times: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("select 1", prepare=True).fetchone()
            times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e6, times[min(n - 1, round(0.99 * (n - 1)))] * 1e6
