"""Admin API under row-level security: list latency over 1,000,000 messages, and consent lookups under load.

    .venv/bin/python bench/admin_api.py --messages 1000000 --stations 10 --threads 100000

Builds a scratch database with the migrations and loads it in bulk with SQL (``--stations``
stations, one customer and one thread per ``--threads``, ``--messages`` messages spread over
the threads; customer numbers are real ciphertexts of a pool of real numbers), then measures:

1. **List latency, RLS against none** (goal: a STATION_MANAGER with RLS at most 2x the owner
   without RLS). The API's two list queries (the threads list, newest first, and one thread's
   messages; the same SQLAlchemy statements as worker/web/admin/routes/threads.py), each timed
   as a whole transaction:
   - ``manager+RLS``: ``AdminDatabase.transaction`` for a STATION_MANAGER token of one station
     (SET LOCAL ROLE msgworker_api, the settings, the query, commit), exactly as a request;
   - ``owner``: the same statement in a plain transaction as the owner (a superuser here, so
     no RLS), with the station filter written into the query instead: the same rows, what the
     list would cost if Python did the filtering.
   First pages and a page from the middle (by cursor). Also the endpoint end to end in-process
   (ASGI, no network) as the manager, for scale.
2. **Consent lookup p99 under 50 concurrent clients**: ``msgworker web``'s app under uvicorn
   (one process, as ``msgworker web`` runs) on 127.0.0.1, ``--clients`` concurrent HTTP clients
   each posting ``/api/v1/consent/lookup`` for random known numbers (an audited VIEW each, so a
   write per request) as a STATION_MANAGER, ``--lookups`` in all.

Same-run references (bench/reference.py) and the load average are printed; the database is
dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from consent import ADMIN, _setup_db
from reference import reference_loop_ms, select1_round_trip_us

NUMBER_POOL = 2000


def _load(dsn: str, stations: int, threads: int, messages: int) -> tuple[list[uuid.UUID], list[str]]:
    """Stations, customers (one per thread), threads and messages; returns station ids and the numbers."""
    from worker import pii

    numbers = [f"+1415{3000000 + i:07d}" for i in range(NUMBER_POOL)]
    encrypted = [pii.encrypt(n, kind="phone") for n in numbers]
    indexes = [pii.blind_index(n, kind="phone") for n in numbers]
    with psycopg.connect(dsn) as conn:
        ids = [uuid.uuid4() for _ in range(stations)]
        conn.execute(
            "INSERT INTO identity.stations (id, code, name, timezone, brand_name) "
            "SELECT id, 'B' || ord, 'Bench ' || ord, 'America/New_York', 'Bench' "
            "FROM unnest(%s::uuid[]) WITH ORDINALITY AS t(id, ord)",
            (ids,),
        )
        # Customer i: station i % S; the first NUMBER_POOL customers of each station carry real
        # blind indexes (pool numbers), the rest a derived unique index.
        conn.execute(
            "INSERT INTO core.customers (id, station_id, phone_encrypted, phone_index, source) "
            "SELECT md5('c' || i)::uuid, (%(st)s::uuid[])[1 + i %% %(s)s], (%(enc)s::text[])[1 + i %% %(n)s], "
            "CASE WHEN i < %(n)s THEN (%(idx)s::bytea[])[1 + i] ELSE sha256(('c' || i)::bytea) END, 'sms_inbound' "
            "FROM generate_series(0, %(t)s - 1) AS i",
            {"st": ids, "s": stations, "enc": encrypted, "n": NUMBER_POOL, "idx": indexes, "t": threads},
        )
        conn.execute(
            "INSERT INTO core.message_threads (id, customer_id, channel, station_id, last_message_at, created_at) "
            "SELECT md5('t' || i)::uuid, md5('c' || i)::uuid, 'sms', (%(st)s::uuid[])[1 + i %% %(s)s], "
            "now() - make_interval(secs => i * 7), now() - make_interval(secs => i * 7 + 3600) "
            "FROM generate_series(0, %(t)s - 1) AS i",
            {"st": ids, "s": stations, "t": threads},
        )
        conn.execute(
            "INSERT INTO core.messages (thread_id, station_id, channel, direction, provider_message_id, body, "
            "created_at) "
            "SELECT md5('t' || (i %% %(t)s))::uuid, (%(st)s::uuid[])[1 + (i %% %(t)s) %% %(s)s], 'sms', "
            "CASE WHEN i %% 2 = 0 THEN 'inbound' ELSE 'outbound' END, 'SM' || md5('m' || i), "
            "'message ' || i || ' about the party on saturday', now() - make_interval(secs => i) "
            "FROM generate_series(0, %(m)s - 1) AS i",
            {"st": ids, "s": stations, "t": threads, "m": messages},
        )
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return ids, numbers


def _tokens(stations: list[uuid.UUID]) -> tuple[Any, str]:
    """A STATION_MANAGER principal for the first station, and its bearer secret."""
    from worker.audit import Actor
    from worker.db import session_scope
    from worker.identity import tokens
    from worker.models import UserRole

    with session_scope() as s:
        issued = tokens.create_token(s, name="bench-manager", role=UserRole.STATION_MANAGER,
                                     station_ids=[stations[0]], actor=Actor.cli("bench"))
    with session_scope() as s:
        principal = tokens.authenticate(s, issued.secret)
    return principal, issued.secret


def _timed(fn: Callable[[], object], samples: int) -> dict[str, float]:
    for _ in range(20):
        fn()
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"p50": statistics.median(times) * 1000, "p99": times[min(samples - 1, round(0.99 * (samples - 1)))] * 1000}


def _list_latency(stations: list[uuid.UUID], principal: Any, samples: int) -> None:
    from sqlalchemy import select, tuple_

    from worker.db import get_sessionmaker
    from worker.models import Customer, Message, MessageThread
    from worker.web.admin.database import AdminDatabase

    database = AdminDatabase()
    station = stations[0]
    sessions = get_sessionmaker()

    def threads_query(mid: tuple[Any, Any] | None, own_filter: bool) -> Any:
        q = (select(MessageThread, Customer.phone_encrypted)
             .join(Customer, Customer.id == MessageThread.customer_id, isouter=True)
             .where(MessageThread.deleted_at.is_(None))
             .order_by(MessageThread.last_message_at.desc(), MessageThread.id.desc()).limit(51))
        if own_filter:
            q = q.where(MessageThread.station_id == station)
        if mid is not None:
            q = q.where(tuple_(MessageThread.last_message_at, MessageThread.id) < tuple_(*mid))
        return q

    with sessions() as s:
        ordered = s.execute(select(MessageThread.last_message_at, MessageThread.id)
                            .where(MessageThread.station_id == station)
                            .order_by(MessageThread.last_message_at.desc(), MessageThread.id.desc())).all()
        mid = tuple(ordered[len(ordered) // 2])
        busiest = s.execute(select(Message.thread_id).where(Message.station_id == station).limit(1)).scalar_one()

    def messages_query() -> Any:
        return (select(Message).where(Message.thread_id == busiest, Message.deleted_at.is_(None))
                .order_by(Message.created_at, Message.id).limit(51))

    def as_manager(query: Any) -> Callable[[], object]:
        def run() -> object:
            with database.transaction(principal) as session:
                return session.execute(query).all()
        return run

    def as_owner(query: Any) -> Callable[[], object]:
        def run() -> object:
            with sessions() as session, session.begin():
                return session.execute(query).all()
        return run

    # The manager's rows and the owner's (station filter in the query) must be the same rows.
    assert [r[0].id for r in as_manager(threads_query(None, False))()] == \
        [r[0].id for r in as_owner(threads_query(None, True))()]
    cases = {
        "threads, first page": (threads_query(None, False), threads_query(None, True)),
        "threads, middle page (cursor)": (threads_query(mid, False), threads_query(mid, True)),
        "one thread's messages": (messages_query(), messages_query()),
    }
    for name, (manager_q, owner_q) in cases.items():
        manager = _timed(as_manager(manager_q), samples)
        owner = _timed(as_owner(owner_q), samples)
        plain = _timed(as_owner(manager_q), samples)  # the very statement, RLS off: all stations
        print(f"list {name}: manager+RLS p50 {manager['p50']:.3f} ms p99 {manager['p99']:.3f} ms | "
              f"owner (station in the query) p50 {owner['p50']:.3f} p99 {owner['p99']:.3f} | "
              f"owner, same statement, all stations p50 {plain['p50']:.3f} | "
              f"ratio p50 {manager['p50'] / owner['p50']:.2f}x p99 {manager['p99'] / owner['p99']:.2f}x")


def _endpoint_latency(secret: str, samples: int) -> None:
    import httpx

    from worker.web.admin.app import create_admin_app

    app = create_admin_app()
    headers = {"Authorization": f"Bearer {secret}"}

    async def main() -> dict[str, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(20):
                (await client.get("/threads", headers=headers)).raise_for_status()
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                (await client.get("/threads", headers=headers)).raise_for_status()
                times.append(time.perf_counter() - t0)
        times.sort()
        return {"p50": statistics.median(times) * 1000, "p99": times[round(0.99 * (samples - 1))] * 1000}

    r = asyncio.run(main())
    print(f"endpoint GET /threads in-process as the manager (auth + RLS + JSON): p50 {r['p50']:.2f} ms "
          f"p99 {r['p99']:.2f} ms")


def _lookup_under_load(dsn_url: str, secret: str, numbers: list[str], clients: int, lookups: int,
                       port: int) -> None:
    import httpx

    env = {**os.environ, "DATABASE_URL": dsn_url, "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "worker.web.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "120"],
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # The manager's numbers: pool numbers whose customers are at its station (customer i at station i % S).
        headers = {"Authorization": f"Bearer {secret}"}
        times: list[float] = []
        errors = 0

        async def client(n: int, http: httpx.AsyncClient) -> None:
            nonlocal errors
            rng = random.Random(n)
            for _ in range(n):
                phone = rng.choice(numbers)
                t0 = time.perf_counter()
                try:
                    r = await http.post(f"{base}/api/v1/consent/lookup", json={"phone": phone}, headers=headers)
                except httpx.TransportError:
                    errors += 1
                    continue
                times.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        async def main() -> float:
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            async with httpx.AsyncClient(limits=limits, timeout=30) as http:
                await asyncio.gather(*(client(10, http) for _ in range(clients)))  # warm-up
                times.clear()
                t0 = time.perf_counter()
                await asyncio.gather(*(client(lookups // clients, http) for _ in range(clients)))
                return time.perf_counter() - t0

        wall = asyncio.run(main())
        times.sort()
        n = len(times)
        print(f"consent lookup, {clients} concurrent clients, {n} requests in {wall:.1f} s ({n / wall:.0f}/s), "
              f"errors {errors}: p50 {statistics.median(times) * 1000:.1f} ms, "
              f"p99 {times[round(0.99 * (n - 1))] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--stations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()}")
    name = f"msgworker_bench_admin_{uuid.uuid4().hex[:8]}"
    url = _setup_db(name)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        t0 = time.perf_counter()
        stations, numbers = _load(dsn, args.stations, args.threads, args.messages)
        print(f"loaded {args.stations} stations, {args.threads} threads, {args.messages} messages in "
              f"{time.perf_counter() - t0:.1f} s")
        principal, secret = _tokens(stations)
        mine = [n for i, n in enumerate(numbers) if i % args.stations == 0]
        print(f"reference: pure-Python loop {reference_loop_ms():.1f} ms; select 1 round trip "
              "p50 {:.0f} us p99 {:.0f} us".format(*select1_round_trip_us(dsn)))
        _list_latency(stations, principal, args.samples)
        _endpoint_latency(secret, args.samples)
        _lookup_under_load(url, secret, mine, args.clients, args.lookups, args.port)
        print(f"load average at end: {os.getloadavg()}")
    finally:
        if not args.keep:
            from worker.db import reset_engine

            reset_engine()
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
