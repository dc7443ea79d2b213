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

``rate``: one sender with a configured rate (segments/s) and a backlog larger than it can send
in the measured time, rate limits on, a real celery worker and beat, and the fake Twilio in this
process so its receive times are exact. After a warm-up (the bucket starts full), efficiency =
segments Twilio received in the next ``--seconds`` / (rate x seconds); and over the whole run,
the most segments received in any 1-second window, which must stay within rate + the bucket's
capacity (one second's worth).

``stop``: no send after an acknowledged STOP (issue 16 point 2): STOPs posted to the real
receiver while marketing texts to the same numbers fall due, half with the worker running and
half while it is stopped, then restarted; counts the texts Twilio received after their
number's STOP was answered 200 (must be 0) and the STOP honour latency from that 200
(``bench_stop``).

    .venv/bin/python bench/send.py gate --numbers 1000000 --samples 5000
    .venv/bin/python bench/send.py throughput --messages 3000 --concurrency 4
    .venv/bin/python bench/send.py rate --rate 5 --seconds 60
    .venv/bin/python bench/send.py stop --numbers 2000 --restart warm
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
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
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


def seed_backlog(code: str, prefix: str, nums: list[str], body: Callable[[int], str], rate: float = 1.0) -> None:
    """A station with one SMS sender (``rate`` segments/s), a booked customer per number and one
    due transactional text to each, keyed ``<prefix><i>``."""
    from sqlalchemy import text

    from worker import pii
    from worker.db import session_scope
    from worker.models import Booking, Customer, Station, StationSender
    from worker.outbox import enqueue

    with session_scope() as s:
        station = Station(code=code, name=code.title(), timezone="America/New_York", brand_name="Bench")
        s.add(station)
        s.flush()
        s.add(StationSender(station_id=station.id, channel="sms", address="+12125550111", rate_per_second=rate))
        for e in nums:
            c = Customer(station_id=station.id, phone_encrypted=pii.encrypt(e, kind="phone"),
                         phone_index=pii.blind_index(e, kind="phone"))  # fmt: skip
            s.add(c)
            s.flush()
            s.add(Booking(customer_id=c.id, station_id=station.id, date=time_now(), party_adults=8))
        s.flush()
        for i, e in enumerate(nums):
            enqueue(s, station=station, to=e, body=body(i), purpose="transactional", idempotency_key=f"{prefix}{i}")
    with session_scope() as s:
        s.execute(text("ANALYZE"))  # a live database has statistics; a fresh one would plan seq scans


@contextmanager
def services(env: dict[str, str], logdir: Path, concurrency: int, fake_port: int | None) -> Iterator[dict[str, int]]:
    """A real celery worker and beat (and ``msgworker fake-twilio`` on ``fake_port``, if given),
    stopped on exit; yields each one's root pid by name."""
    procs: list[subprocess.Popen[bytes]] = []
    roots: dict[str, int] = {}

    def start(name: str, args: list[str]) -> None:
        log = (logdir / f"{name}.log").open("ab")
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        roots[name] = procs[-1].pid

    try:
        if fake_port is not None:
            start("fake", [str(BIN / "msgworker"), "fake-twilio", "--port", str(fake_port), "--account-sid", SID,
                           "--auth-token", TOKEN, "--callbacks", ""])  # fmt: skip
        start("worker", [str(BIN / "celery"), "-A", "worker", "worker", "--pool=prefork",
                         f"--concurrency={concurrency}", "--without-mingle", "--without-gossip",
                         "--without-heartbeat", "-l", "WARNING"])  # fmt: skip
        start("beat", [str(BIN / "celery"), "-A", "worker", "beat", "-l", "WARNING", "--schedule",
                       str(logdir / "celerybeat-schedule")])  # fmt: skip
        yield roots
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def bench_throughput(url: str, messages: int, concurrency: int, logdir: Path, chunk: int) -> None:
    from sqlalchemy import text

    from worker.db import session_scope

    rng = random.Random(11)
    nums = numbers(messages, rng)
    seed_backlog("TPUT", "tput-", nums, lambda i: f"Bench reminder {i}: chef at 6pm")
    port = free_port()
    env = {**os.environ, "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}", "OUTBOUND_SEND_CHUNK": str(chunk)}
    with services(env, logdir, concurrency, port) as roots:
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


def rate_body(i: int, segments: int) -> str:
    """A GSM-7 text of exactly ``segments`` segments (compliance/segments.py counts it)."""
    from compliance.segments import count_segments

    text = f"Bench reminder {i}: your chef arrives at 6pm."
    while count_segments(text).segments < segments:
        text += " See you then."
    while count_segments(text).segments > segments:
        text = text[:-1]
    return text


def max_in_window(times: list[float], width: float) -> int:
    """The most of the sorted ``times`` inside any half-open window [t, t + width)."""
    best, j = 0, 0
    for i in range(len(times)):
        while j < len(times) and times[j] < times[i] + width:
            j += 1
        best = max(best, j - i)
    return best


def bench_rate(url: str, rate: float, seconds: float, warmup: float, segments: int, concurrency: int,
               logdir: Path) -> None:  # fmt: skip
    """One backlogged sender at ``rate`` segments/s: efficiency and the busiest second (module docstring)."""
    from bench.ingest import cpu_by_component
    from bench.reference import reference_loop_ms, select1_round_trip_us
    from worker.provider.fake import FakeTwilio

    load_start = os.getloadavg()[0]
    ref_loop = reference_loop_ms()
    ref_p50, ref_p99 = select1_round_trip_us(url.replace("+psycopg", ""))
    texts = int((warmup + seconds) * rate / segments * 1.3) + 50  # never runs dry while measured
    seed_backlog("RATE", "rate-", numbers(texts, random.Random(13)), lambda i: rate_body(i, segments), rate)
    capacity = max(1.0, rate)  # worker.outbound.rate_limit.TokenBucket's default: one second's worth
    fake = FakeTwilio(SID, TOKEN).start()
    env = {**os.environ, "TWILIO_API_BASE_URL": fake.base_url, "OUTBOUND_RATE_LIMIT_ENABLED": "true"}
    try:
        with services(env, logdir, concurrency, None) as roots:
            deadline = time.monotonic() + 120 + warmup + seconds
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            if not fake.requests:
                raise SystemExit(f"nothing reached the fake Twilio; logs in {logdir}")
            first = min(r.at for r in fake.requests).timestamp()
            time.sleep(max(0.0, first + warmup + seconds + 1.0 - time.time()))
            cpu = cpu_by_component(roots, url.rsplit("/", 1)[-1])
        creates = sorted(r.at.timestamp() for r in fake.requests if r.method == "POST" and r.status == 201)
    finally:
        fake.stop()
    start, stop = first + warmup, first + warmup + seconds
    measured = [t for t in creates if start <= t < stop]
    efficiency = len(measured) * segments / (rate * seconds)
    busiest = max_in_window(creates, 1.0) * segments
    steady = max_in_window(measured, 1.0) * segments  # after the warm-up: the banked start spent
    print(f"reference: loop {ref_loop:.0f} ms, select 1 p50 {ref_p50:.0f} us p99 {ref_p99:.0f} us; "
          f"load {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")  # fmt: skip
    print("CPU seconds:", {k: round(v, 1) for k, v in cpu.items()})
    print(f"rate {rate:g} segments/s, {segments} segment(s) per text, backlog {texts} texts, worker concurrency "
          f"{concurrency}: {len(measured) * segments} segments in {seconds:g} s after a {warmup:g} s warm-up = "
          f"efficiency {efficiency:.1%}; busiest 1 s window {busiest} segments over the run (bound rate + capacity = "
          f"{rate + capacity:g}), {steady} after the warm-up; {len(creates)} creates in all")  # fmt: skip


STOP_NPAS = ["212", "646", "718", "617", "404"]  # Eastern: inside the marketing window while the bench runs
STOP_FROM = "+12125550111"  # seed_backlog's sender, which is also where customers text


def stop_requests(nums: list[str]) -> list[tuple[str, bytes, dict[str, str]]]:
    """One signed STOP per number, as Twilio posts it (MessageSid, signature over the public URL)."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    out = []
    for number in nums:
        sid = "SM" + uuid.uuid4().hex
        pairs = [("MessageSid", sid), ("SmsSid", sid), ("AccountSid", SID), ("From", number), ("To", STOP_FROM),
                 ("Body", "STOP"), ("NumSegments", "1"), ("NumMedia", "0"), ("ApiVersion", "2010-04-01")]  # fmt: skip
        signature = validator.compute_signature("https://hooks.bench.test/webhooks/twilio/sms", dict(pairs))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        out.append((sid, urlencode(pairs).encode(), headers))
    return out


def bench_stop(url: str, count: int, per_number: int, spread: float, concurrency: int, workers: int,
               restart: str, logdir: Path) -> None:  # fmt: skip
    """STOPs acknowledged by the real receiver while marketing texts to the same numbers fall due.

    Every number has written marketing consent, a booking, one due transactional text and
    ``per_number`` marketing texts falling due over ``spread`` seconds from the start. Phase 1
    posts half the numbers' STOPs as fast as ``concurrency`` connections go, with the worker and
    beat running (the maximum sustained ingest rate here); phase 2 stops the worker
    (``--restart warm``: SIGTERM to celery's main process, which lets running tasks finish;
    ``group``: SIGTERM to every pool child too, cutting tasks short, as a crash would), posts
    the other half while it is down (the receiver still answers 200), waits 3 s (beat
    keeps releasing due texts into the broker) and starts a new worker. Then: every text that
    the in-process fake Twilio received for a number after its STOP's 200 (except the
    confirmation) is a send after acknowledgement; and STOP honour latency is the opt-out
    event's commit (a bench-only NOTIFY trigger, as in bench/ingest.py) minus the 200.
    """
    import asyncio

    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import Procs, cpu_by_component, pct, post_all
    from reference import reference_loop_ms, select1_round_trip_us

    from worker.consent.ledger import record_event
    from worker.db import session_scope
    from worker.models import Station
    from worker.outbox import enqueue
    from worker.provider.fake import FakeTwilio

    load_start = os.getloadavg()[0]
    ref_loop = reference_loop_ms()
    ref_p50, ref_p99 = select1_round_trip_us(url.replace("+psycopg", ""))
    rng = random.Random(17)
    nums: set[str] = set()
    while len(nums) < count:
        nums.add(f"+1{rng.choice(STOP_NPAS)}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}")
    numbers_list = sorted(nums)
    seed_backlog("STOPB", "stop-tx-", numbers_list, lambda i: f"Bench reminder {i}: chef at 6pm")
    from sqlalchemy import select, text

    plain = url.replace("+psycopg", "")
    start_at = time.time() + 8.0  # the marketing texts fall due from here on
    with session_scope() as s:
        station = s.execute(select(Station).where(Station.code == "STOPB")).scalar_one()
        for i, number in enumerate(numbers_list):
            record_event(s, phone_e164=number, kind="marketing_consent", purpose="marketing", source="web_form",
                         evidence={"disclosure": "bench disclosure v1"}, occurred_at=_utc(time.time() - 86400),
                         station_id=None)  # fmt: skip
            for k in range(per_number):
                due = _utc(start_at + rng.uniform(0, spread))
                enqueue(s, station=station, to=number, body=f"Bench offer {i}.{k}: 20% off hibachi",
                        purpose="marketing", idempotency_key=f"stop-mk-{i}-{k}", not_before=due)  # fmt: skip
        s.execute(text("ANALYZE"))
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION bench_notify_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_notify('bench_opt_out', (NEW.evidence->>'provider_message_id') || ' ' || NEW.id); "
            "RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER bench_notify_opt_out AFTER INSERT ON compliance.consent_events FOR EACH ROW "
            "WHEN (NEW.kind = 'opt_out') EXECUTE FUNCTION bench_notify_opt_out()"
        )
    committed: dict[str, float] = {}
    listening, stop_listening = threading.Event(), threading.Event()

    def listen() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("LISTEN bench_opt_out")
            listening.set()
            while not stop_listening.is_set():
                for note in conn.notifies(timeout=0.2):
                    committed.setdefault(note.payload.partition(" ")[0], time.time())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listening.wait(10)
    fake = FakeTwilio(SID, TOKEN).start()
    env = {**os.environ, "TWILIO_API_BASE_URL": fake.base_url, "OUTBOUND_RATE_LIMIT_ENABLED": "false"}
    procs = Procs(logdir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    roots: dict[str, int] = {}
    worker_cmd = [str(BIN / "celery"), "-A", "worker", "worker", "--pool=prefork", f"--concurrency={workers}",
                  "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "WARNING"]  # fmt: skip
    half = count // 2
    requests = stop_requests(numbers_list)
    by_sid = {sid: numbers_list[i] for i, (sid, _, _) in enumerate(requests)}
    try:
        roots["receiver"] = procs.start("receiver", [str(BIN / "msgworker"), "web", "--host", "127.0.0.1", "--port",
                                                     str(port)], env).pid  # fmt: skip
        roots["worker"] = procs.start("worker", worker_cmd, env).pid
        roots["beat"] = procs.start("beat", [str(BIN / "celery"), "-A", "worker", "beat", "-l", "WARNING",
                                             "--schedule", str(logdir / "celerybeat-schedule")], env).pid  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        time.sleep(max(0.0, start_at + spread * 0.2 - time.time()))  # marketing texts are flowing
        t1 = time.time()
        _, answered1, codes1 = asyncio.run(post_all(base, requests[:half], 0.0, concurrency))
        phase1_s = max(answered1.values()) - t1
        cpu = cpu_by_component(roots, url.rsplit("/", 1)[-1])  # from the start to the end of phase 1
        old_worker = procs.procs[1]
        if restart == "warm":  # celery's warm shutdown: running tasks finish, as in a deploy
            old_worker.send_signal(signal.SIGTERM)
        else:  # "group": every pool child too, mid-task, as in a crash
            os.killpg(old_worker.pid, signal.SIGTERM)
        old_worker.wait(timeout=60)
        _, answered2, codes2 = asyncio.run(post_all(base, requests[half:], 0.0, concurrency))
        time.sleep(3.0)
        roots["worker"] = procs.start("worker2", worker_cmd, env).pid
        wait_end = time.monotonic() + spread + 120
        while time.monotonic() < wait_end:
            with psycopg.connect(plain) as conn:
                left = conn.execute(
                    "SELECT (SELECT count(*) FROM core.webhook_inbox WHERE status = 'pending')"
                    " + (SELECT count(*) FROM core.outbound_messages WHERE status IN ('queued', 'pending', 'deferred',"
                    " 'sending'))"
                ).fetchone()[0]  # type: ignore[index]
            if left == 0 and len(committed) >= count:
                break
            time.sleep(1.0)
        time.sleep(3.0)
    finally:
        procs.stop_all()
        stop_listening.set()
        listener.join(5)  # before the scratch database is dropped under it
        fake.stop()
    answered = {**answered1, **answered2}
    ack = {by_sid[sid]: t for sid, t in answered.items()}
    after: list[tuple[str, float, str]] = []
    confirmations: dict[str, int] = {}
    before = 0
    for r in fake.requests:
        if r.method != "POST" or r.status != 201:
            continue
        to, body = r.param("To") or "", r.param("Body") or ""
        if to not in ack:
            continue
        if not body.startswith("Bench "):
            confirmations[to] = confirmations.get(to, 0) + 1
        elif r.at.timestamp() > ack[to]:
            after.append((to[:5] + "…", r.at.timestamp() - ack[to], body))
        else:
            before += 1
    with psycopg.connect(plain) as conn:
        statuses = dict(conn.execute(
            "SELECT status || '/' || coalesce(gate_reason, '-'), count(*) FROM core.outbound_messages"
            " WHERE purpose <> 'compliance' GROUP BY 1 ORDER BY 1").fetchall())  # fmt: skip
        n_attempts = conn.execute("SELECT count(*) FROM core.send_attempts").fetchone()[0]  # type: ignore[index]
        # For a send after the 200: was it decided before the STOP was stored (in flight at the 200)?
        decided_first = sum(
            bool(conn.execute(
                "SELECT o.decided_at < i.received_at FROM core.outbound_messages o JOIN core.webhook_inbox i"
                " ON i.from_index = o.to_index AND i.provider = 'twilio_sms' WHERE o.body = %s", (body,)
            ).fetchone()[0])  # type: ignore[index]
            for _, _, body in after
        )  # fmt: skip
    honour1 = [(committed[sid] - answered1[sid]) * 1000 for sid in answered1 if sid in committed]
    honour2 = [(committed[sid] - answered2[sid]) * 1000 for sid in answered2 if sid in committed]
    print(f"reference: loop {ref_loop:.0f} ms, select 1 p50 {ref_p50:.0f} us p99 {ref_p99:.0f} us; "
          f"load {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")  # fmt: skip
    print("CPU seconds (phase 1):", {k: round(v, 1) for k, v in cpu.items()})
    print(f"{count} numbers, each 1 transactional + {per_number} marketing texts due over {spread:g} s; "
          f"worker concurrency {workers}, {concurrency} posting connections")  # fmt: skip
    print(f"phase 1 (worker and beat running): {half} STOPs acknowledged in {phase1_s:.2f} s = "
          f"{half / phase1_s:.0f} STOPs/s; answers {codes1}")  # fmt: skip
    print(f"phase 2 (worker stopped ({restart}), restarted 3 s after the last 200): {count - half} STOPs; "
          f"answers {codes2}")  # fmt: skip
    print(f"texts received by Twilio before their number's STOP 200: {before}; confirmations: "
          f"{sum(confirmations.values())} to {len(confirmations)} numbers (max {max(confirmations.values(), default=0)}"
          f" per number)")  # fmt: skip
    worst = [(to, round(delay, 3)) for to, delay, _ in sorted(after, key=lambda a: -a[1])[:10]]
    print(f"SENDS AFTER ACKNOWLEDGEMENT: {len(after)}" + (f" (number, s after the 200): {worst}; decided before"
          f" the STOP was stored: {decided_first}" if after else ""))  # fmt: skip
    print(f"opt-outs committed: {len(committed)} of {count}; attempts {n_attempts}; rows: {statuses}")
    for name, values in (("phase 1", honour1), ("phase 2 (across the restart)", honour2)):
        if values:
            print(f"STOP honour latency from the 200, {name}: p50 {pct(values, 50):.0f} ms, p99 {pct(values, 99):.0f}"
                  f" ms, max {max(values):.0f} ms (n={len(values)})")  # fmt: skip


def _utc(epoch: float) -> object:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


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
    r = sub.add_parser("rate")
    r.add_argument("--rate", type=float, default=5.0, help="the sender's segments per second")
    r.add_argument("--seconds", type=float, default=60.0, help="measured time, after the warm-up")
    r.add_argument("--warmup", type=float, default=5.0, help="seconds skipped after the first send")
    r.add_argument("--segments", type=int, default=1, help="segments per text")
    r.add_argument("--concurrency", type=int, default=2)
    st = sub.add_parser("stop")
    st.add_argument("--numbers", type=int, default=400, help="numbers, each with due texts and one STOP")
    st.add_argument("--per-number", type=int, default=3, help="marketing texts per number (the 24 h cap is 3)")
    st.add_argument("--spread", type=float, default=30.0, help="seconds over which the marketing texts fall due")
    st.add_argument("--concurrency", type=int, default=16, help="connections posting STOPs")
    st.add_argument("--workers", type=int, default=2, help="celery worker concurrency")
    st.add_argument("--restart", choices=("warm", "group"), default="warm", help="how the worker is stopped")
    for p in (g, t, r, st):
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
        elif args.cmd == "stop":
            bench_stop(url, args.numbers, args.per_number, args.spread, args.concurrency, args.workers, args.restart,
                       logdir)  # fmt: skip
        elif args.cmd == "rate":
            bench_rate(url, args.rate, args.seconds, args.warmup, args.segments, args.concurrency, logdir)
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
