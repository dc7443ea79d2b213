"""Outbound benchmarks: send-gate decision latency, and outbox -> fake Twilio throughput.

Builds a scratch database with the migrations (dropped afterwards unless --keep) and claims a
free Redis database number (as the tests do).

``gate``: loads 1,000,000 numbers into compliance.consent_state (plus station rows, outbox
history for the frequency cap, customers and bookings for the relationship check), then
times the read half of the send task's decision (worker.outbound.facts.read_sendable: the
per-number lock, the row claim and the facts query, pipelined in one round trip, then
compliance.gate.evaluate_send) on queued outbox rows to random numbers, a mix of purposes.
Each decision runs in its own transaction, committed afterwards (not timed; nothing is
written), as the send path commits: psycopg keeps prepared statements only from transactions
that commit, so a rollback here would re-plan every query and misstate the cost.

``throughput``: enqueues N transactional texts to N customers, then starts a real celery
worker and beat and a fake Twilio process (``msgworker fake-twilio``), rate limits off, and
measures N / (last sent_at - first decided_at), from the rows themselves.

    .venv/bin/python bench/send.py gate --numbers 1000000 --samples 5000
    .venv/bin/python bench/send.py throughput --messages 3000 --concurrency 4
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SID = "AC" + "2" * 32
TOKEN = "bench-send-auth-token"
INDEX_KEY = base64.urlsafe_b64encode(b"bench-send-index-key-0123456789a").decode()
PII_KEY = base64.urlsafe_b64encode(b"bench-send-pii-key-0123456789abc").decode()
NPAS = ["212", "646", "718", "415", "213", "214", "305", "312", "404", "208", "907", "602", "808", "503", "617"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(db_name: str, redis_db: int) -> str:
    """Environment for this process and its children; must run before worker.* is imported."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}"
    os.environ.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PII_KEYS": f"b1:{PII_KEY}",
            "PII_INDEX_KEY": INDEX_KEY,
            "PUBLIC_BASE_URL": "https://hooks.bench.test",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "OUTBOUND_RATE_LIMIT_ENABLED": "false",
        }
    )
    return url


def blind(e164: str, key: bytes) -> bytes:
    return hmac.new(key, b"phone\x00" + e164.encode(), hashlib.sha256).digest()


def numbers(n: int, rng: random.Random) -> list[str]:
    seen: set[str] = set()
    while len(seen) < n:
        seen.add(f"+1{rng.choice(NPAS)}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}")
    return list(seen)


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows: list[tuple[object, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load_population(url: str, total: int, rng: random.Random) -> tuple[uuid.UUID, list[str]]:
    """1,000,000-row consent_state and friends; returns (station id, the numbers)."""
    from worker import pii

    key = base64.urlsafe_b64decode(INDEX_KEY)
    nums = numbers(total, rng)
    assert blind(nums[0], key) == pii.blind_index(nums[0], kind="phone")
    station_id = uuid.uuid4()
    sender_id = uuid.uuid4()
    dummy = pii.encrypt("+12125550100", kind="phone")
    started = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute(
            "INSERT INTO identity.stations (id, code, name, timezone, brand_name) "
            "VALUES (%s, 'BENCH', 'Bench', 'America/New_York', 'Bench Hibachi')",
            (station_id,),
        )
        conn.execute(
            "INSERT INTO identity.station_senders (id, station_id, channel, address) VALUES (%s, %s, 'sms', %s)",
            (sender_id, station_id, "+12125550100"),
        )
        consent_event = uuid.uuid4()
        state_rows: list[tuple[object, ...]] = []
        for i, e in enumerate(nums):
            idx = blind(e, key)
            consent = i % 5 < 2
            state_rows.append((idx, dummy, None, i % 20 == 0, i % 20 == 0, consent,
                               consent_event if consent else None, i % 50 == 1))  # fmt: skip
            if i % 10 == 3:  # a station-scoped row for 10% of numbers
                state_rows.append((idx, dummy, station_id, False, False, True, consent_event, False))
        copy_rows(
            conn,
            "compliance.consent_state",
            ["phone_index", "phone_encrypted", "station_id", "opted_out", "marketing_opted_out",
             "marketing_consent", "marketing_consent_event_id", "pending_review"],
            state_rows,
        )  # fmt: skip
        # Outbox history: 0.3 texts per number over the last two days (the frequency cap counts these).
        history = []
        for i in range(total * 3 // 10):
            e = nums[rng.randrange(total)]
            history.append((f"hist-{i}", station_id, sender_id, dummy, blind(e, key), "Earlier text",
                            "marketing" if i % 2 else "transactional", "sent", "allowed",
                            f"now() - interval '{rng.randrange(0, 172800)} seconds'"))  # fmt: skip
        with conn.cursor() as cur, cur.copy(
            "COPY core.outbound_messages (idempotency_key, station_id, sender_id, to_encrypted, to_index, body, "
            "purpose, status, gate_decision, decided_at) FROM STDIN"
        ) as copy:
            now = time.time()
            for row in history:
                ts = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(now - rng.randrange(0, 172800)))
                copy.write_row((*row[:9], ts))
        # Customers (one number in five) with bookings for half of them: the relationship check.
        customers = []
        bookings = []
        for i in range(total // 5):
            cid = uuid.uuid4()
            customers.append((cid, station_id, blind(nums[i], key), dummy))
            if i % 2 == 0:
                bookings.append((customers[-1][0], station_id))
        copy_rows(conn, "core.customers", ["id", "station_id", "phone_index", "phone_encrypted"], customers)
        with conn.cursor() as cur, cur.copy(
            "COPY core.bookings (customer_id, station_id, date, party_adults) FROM STDIN"
        ) as copy:
            for cid, sid in bookings:
                copy.write_row((cid, sid, "2026-12-01 18:00:00+00", 10))
        conn.commit()
        conn.execute("ANALYZE")
    print(f"loaded {len(state_rows):,} consent_state rows, {len(history):,} outbox rows, {len(customers):,} "
          f"customers in {time.perf_counter() - started:.1f}s")  # fmt: skip
    return station_id, nums


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_gate(url: str, total: int, samples: int) -> None:
    rng = random.Random(7)
    station_id, nums = load_population(url, total, rng)
    from datetime import UTC, datetime

    import phonenumbers

    from worker.db import get_sessionmaker, session_scope
    from worker.outbox import enqueue
    from worker.settings import get_settings

    settings = get_settings()
    purposes = ["marketing", "transactional", "compliance"]
    ids: list[uuid.UUID] = []
    with session_scope() as s:
        while len(ids) < samples:
            e = nums[rng.randrange(total * 2 // 5)]  # half of these have customer rows
            if not phonenumbers.is_valid_number(phonenumbers.parse(e)):
                continue
            purpose = purposes[len(ids) % 3]
            ids.append(
                enqueue(
                    s,
                    station_id=station_id,
                    to=e,
                    body="Bench text",
                    purpose=purpose,
                    idempotency_key=f"gate-{len(ids)}",
                    in_reply_to_event_id=uuid.uuid4() if purpose == "compliance" else None,
                ).message.id
            )
    from compliance.gate import evaluate_send
    from worker.outbound.facts import gate_policy, read_sendable

    policy = gate_policy(settings)
    session = get_sessionmaker()()
    parts: dict[str, list[float]] = {"lock+claim+facts": [], "evaluate": [], "total": []}
    outcomes: dict[str, int] = {}
    for n, message_id in enumerate(ids):
        session.begin()
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        # Pool checkout (with its pre-ping), BEGIN, the number's lock, the row claim and the
        # facts query: the last three pipelined in one round trip.
        claimed = read_sendable(session, [message_id], now=now)[1][message_id]
        t2 = time.perf_counter()
        decision = evaluate_send(claimed.facts, now, policy)  # the pure gate
        t3 = time.perf_counter()
        # Commit (nothing was written), as the send path does: psycopg keeps statements it
        # prepared only in transactions that commit, and a rollback here would mean re-planning.
        session.commit()
        if n >= 200:  # warm-up: connection, prepared statements, caches
            for key, value in (("lock+claim+facts", t2 - t0), ("evaluate", t3 - t2), ("total", t3 - t0)):
                parts[key].append(value * 1000)
            reason = decision.reason.value if decision.reason else "-"
            key = f"{claimed.row['purpose']}:{decision.outcome.value}:{reason}"
            outcomes[key] = outcomes.get(key, 0) + 1
    session.close()
    for name, values in parts.items():
        print(
            f"{name:<17} p50={pct(values, 50):.3f} ms p90={pct(values, 90):.3f} ms p99={pct(values, 99):.3f} ms "
            f"max={max(values):.3f} ms ({len(values)} samples over {total:,} numbers)"
        )
    print("outcomes:", dict(sorted(outcomes.items())))


def bench_throughput(url: str, messages: int, concurrency: int, logdir: Path, chunk: int) -> None:
    from sqlalchemy import text

    from worker import pii
    from worker.db import session_scope
    from worker.models import Booking, Customer, Station, StationSender
    from worker.outbox import enqueue

    rng = random.Random(11)
    nums = numbers(messages, rng)
    with session_scope() as s:
        station = Station(code="TPUT", name="Throughput", timezone="America/New_York", brand_name="Bench")
        s.add(station)
        s.flush()
        s.add(StationSender(station_id=station.id, channel="sms", address="+12125550111"))
        for e in nums:
            c = Customer(station_id=station.id, phone_encrypted=pii.encrypt(e, kind="phone"),
                         phone_index=pii.blind_index(e, kind="phone"))  # fmt: skip
            s.add(c)
            s.flush()
            s.add(Booking(customer_id=c.id, station_id=station.id, date=time_now(), party_adults=8))
        s.flush()
        for i, e in enumerate(nums):
            enqueue(s, station=station, to=e, body=f"Bench reminder {i}: chef at 6pm", purpose="transactional",
                    idempotency_key=f"tput-{i}")  # fmt: skip
    with session_scope() as s:
        s.execute(text("ANALYZE"))  # a live database has statistics; a fresh one would plan seq scans
    port = free_port()
    env = {**os.environ, "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}", "OUTBOUND_SEND_CHUNK": str(chunk)}
    procs: list[subprocess.Popen[bytes]] = []

    roots: dict[str, int] = {}

    def start(name: str, args: list[str]) -> None:
        log = (logdir / f"{name}.log").open("ab")
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        roots[name] = procs[-1].pid

    try:
        start("fake", [str(BIN / "msgworker"), "fake-twilio", "--port", str(port), "--account-sid", SID,
                       "--auth-token", TOKEN, "--callbacks", ""])  # fmt: skip
        start("worker", [str(BIN / "celery"), "-A", "worker", "worker", "--pool=prefork",
                         f"--concurrency={concurrency}", "--without-mingle", "--without-gossip",
                         "--without-heartbeat", "-l", "WARNING"])  # fmt: skip
        start("beat", [str(BIN / "celery"), "-A", "worker", "beat", "-l", "WARNING", "--schedule",
                       str(logdir / "celerybeat-schedule")])  # fmt: skip
        deadline = time.monotonic() + 600
        sent = 0
        while time.monotonic() < deadline:
            with session_scope() as s:
                sent = int(s.execute(text(
                    "SELECT count(*) FROM core.outbound_messages "
                    "WHERE idempotency_key LIKE 'tput-%' AND status = 'sent'"
                )).scalar_one())  # fmt: skip
            if sent >= messages:
                break
            time.sleep(0.5)
        with session_scope() as s:
            row = s.execute(text(
                "SELECT min(decided_at) AS first, max(sent_at) AS last, count(*) FILTER (WHERE status = 'sent') AS n "
                "FROM core.outbound_messages WHERE idempotency_key LIKE 'tput-%'"
            )).one()  # fmt: skip
        span = (row.last - row.first).total_seconds()
        from bench.ingest import cpu_by_component

        cpu = cpu_by_component(roots, url.rsplit("/", 1)[-1])
        print("CPU seconds:", {k: round(v, 1) for k, v in cpu.items()}, f"load {os.getloadavg()[0]:.1f}")
        print(
            f"outbox -> fake Twilio: {row.n} of {messages} sent in {span:.2f}s = {row.n / span:.0f} msgs/s "
            f"(worker concurrency {concurrency}, {chunk} ids per task, rate limits off)"
        )
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def time_now() -> object:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gate")
    g.add_argument("--numbers", type=int, default=1_000_000)
    g.add_argument("--samples", type=int, default=5000)
    t = sub.add_parser("throughput")
    t.add_argument("--messages", type=int, default=3000)
    t.add_argument("--concurrency", type=int, default=4)
    t.add_argument("--chunk", type=int, default=10, help="ids per send task (OUTBOUND_SEND_CHUNK)")
    for p in (g, t):
        p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    from tests.support.env import claim_redis_db, release_redis_db

    db_name = f"msgworker_bench_send_{uuid.uuid4().hex[:8]}"
    redis_db = claim_redis_db()
    url = configure(db_name, redis_db)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')  # type: ignore[arg-type]
    logdir = ROOT / "bench" / "out" / db_name
    logdir.mkdir(parents=True, exist_ok=True)
    try:
        from worker import migrate

        migrate.upgrade("head", url)
        if args.cmd == "gate":
            bench_gate(url, args.numbers, args.samples)
        else:
            bench_throughput(url, args.messages, args.concurrency, logdir, args.chunk)
    finally:
        from worker.db import reset_engine

        reset_engine()
        release_redis_db(redis_db)
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')  # type: ignore[arg-type]
        print(f"logs in {logdir}", file=io.StringIO())


if __name__ == "__main__":
    main()
