"""What the client-side answer limit (worker/db_deadlines.py) costs per round trip.

Every wait for PostgreSQL now goes through DeadlineConnection.wait (sync: the worker and the
CLI) or AsyncDeadlineConnection.wait (the receiver), which passes psycopg a timeout. This
times a prepared ``select 1`` on a plain psycopg connection and on a deadline connection,
interleaved in blocks (so a change in the machine's load hits both alike), sync and async,
and prints median and p99 microseconds per round trip with the same-run references
(bench/reference.py).

    .venv/bin/python bench/db_deadlines.py [--n 20000] [--blocks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference import reference_loop_ms, select1_round_trip_us
from worker.db_deadlines import AsyncDeadlineConnection, DeadlineConnection

DSN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _sync_block(conn: psycopg.Connection[Any], n: int, out: list[float]) -> None:
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute("select 1", prepare=True).fetchone()
        out.append(time.perf_counter() - t0)


async def _async_block(conn: psycopg.AsyncConnection[Any], n: int, out: list[float]) -> None:
    for _ in range(n):
        t0 = time.perf_counter()
        await (await conn.execute("select 1", prepare=True)).fetchone()
        out.append(time.perf_counter() - t0)


def _summary(name: str, times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    p50 = statistics.median(times) * 1e6
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] * 1e6
    print(f"  {name:<34} p50 {p50:7.1f} us   p99 {p99:7.1f} us   ({len(times)} round trips)")
    return p50, p99


def run_sync(n: int, blocks: int) -> None:
    plain = psycopg.connect(DSN, autocommit=True)
    deadline = DeadlineConnection.connect(DSN, autocommit=True)
    deadline.answer_timeout = 40.0
    a: list[float] = []
    b: list[float] = []
    try:
        _sync_block(plain, 200, [])  # warm-up, prepares the statement
        _sync_block(deadline, 200, [])
        for _ in range(blocks):
            _sync_block(plain, n // blocks, a)
            _sync_block(deadline, n // blocks, b)
    finally:
        plain.close()
        deadline.close()
    print("sync (worker, CLI):")
    p_a, _ = _summary("psycopg.Connection", a)
    p_b, _ = _summary("DeadlineConnection (40 s limit)", b)
    print(f"  difference at p50: {p_b - p_a:+.1f} us per round trip")


async def run_async(n: int, blocks: int) -> None:
    plain = await psycopg.AsyncConnection.connect(DSN, autocommit=True)
    deadline = await AsyncDeadlineConnection.connect(DSN, autocommit=True)
    deadline.answer_timeout = 4.0
    a: list[float] = []
    b: list[float] = []
    try:
        await _async_block(plain, 200, [])
        await _async_block(deadline, 200, [])
        for _ in range(blocks):
            await _async_block(plain, n // blocks, a)
            await _async_block(deadline, n // blocks, b)
    finally:
        await plain.close()
        await deadline.close()
    print("async (receiver):")
    p_a, _ = _summary("psycopg.AsyncConnection", a)
    p_b, _ = _summary("AsyncDeadlineConnection (4 s limit)", b)
    print(f"  difference at p50: {p_b - p_a:+.1f} us per round trip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="round trips per connection kind")
    parser.add_argument("--blocks", type=int, default=10, help="interleaved blocks")
    args = parser.parse_args()
    print(f"load at start: {os.getloadavg()[0]:.2f}")
    print(f"reference loop: {reference_loop_ms():.1f} ms")
    med, p99 = select1_round_trip_us(DSN)
    print(f"reference select 1: p50 {med:.0f} us, p99 {p99:.0f} us")
    run_sync(args.n, args.blocks)
    asyncio.run(run_async(args.n, args.blocks))
    print(f"load at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
