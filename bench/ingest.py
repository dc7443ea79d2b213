"""Inbound end to end: signed Twilio webhooks posted to the real receiver until each is a message row.

Builds a scratch database with the migrations (dropped afterwards unless --keep), starts a
private redis-server, the real receiver (`msgworker web`) and a real celery worker, then posts
N signed SMS webhooks from N different numbers with httpx (async), either as fast as the
client can (--rate 0) or at a fixed offered rate.

"Committed" is observed exactly: a bench-only trigger on core.messages calls pg_notify with
the MessageSid, and Postgres delivers a notification only when its transaction commits. A
listener thread timestamps each arrival. So:

- webhook-to-row latency = notification arrival - moment the POST was started;
- end-to-end throughput = N / (last notification - first POST);
- receiver requests/s = N / (last response - first POST).

Bodies and signatures are computed before the clock starts, so the client spends its CPU on
HTTP only. Everything (Postgres, Redis, receiver, worker, this client) shares the machine.

``--mix keywords10`` makes every tenth text a keyword as people type it (STOP, "Stop please",
UNSUBSCRIBE, Cancel, START, UNSTOP, HELP, "help?", INFO...: six opt-outs, two opt-ins, two
HELPs in every ten), so the consent engine, the ledger and the outbox run for them; a third
of those come from a number that never texted, a third from the sender of the plain text just
before, a third from the previous keyword's sender (a STOP repeated, or START after STOP).
The default mix is plain texts only, each from its own number.

``--mix realistic`` is what a station's inbox looks like (bench/mixes.py): 5% opt-out keywords,
1% START and HELP (half each), 1% free-text revocations ("please stop texting me", one in six
ambiguous, which opens a review item), the rest conversation; a third of the texts come from a
number that texted in the last few hundred texts (so one drain batch often holds two texts of
one number: a STOP after a question, START after STOP). For the consent texts it measures:

- STOP honour latency: the POST's start -> the opt-out event's commit (a bench-only trigger on
  compliance.consent_events notifies at commit), for every opt-out text (keyword or free text);
- confirmation latency: that commit -> the fake Twilio accepting the confirmation (the
  ``/_fake/requests`` log of a ``msgworker fake-twilio`` process, paired per number in order
  with the confirmation rows that were sent). Sends go through the real release tick (beat,
  every second) and send task; rate limiting is off (the per-sender bucket would pace the
  confirmations at the sender's MPS, which is Twilio's limit, not ours), status callbacks off.

A beat and the fake Twilio run with every mix, so plain and realistic runs have the same
processes. ``--no-sends`` starts no beat: the replies stay queued, so a run measures ingest
alone (the send path has its own benchmark, bench/send.py).

It prints same-run references (bench/reference.py: a fixed pure-Python loop, a prepared
``select 1`` round trip) and the load, because this machine's speed varies with the day and
with other work on it; compare CPU per webhook, not wall-clock figures. To measure another
checkout's code, run from it with ``PYTHONPATH`` set to it (the started processes inherit
both); the ``code:`` line says which ``worker`` package the processes import.

    .venv/bin/python bench/ingest.py --n 20000 --rate 0 --concurrency 64
    .venv/bin/python bench/ingest.py --n 6000 --rate 200 --concurrency 32
    .venv/bin/python bench/ingest.py --n 10000 --rate 0 --concurrency 32 --client raw --workers 4 --mix keywords10
    .venv/bin/python bench/ingest.py --n 20000 --rate 200 --concurrency 32 --client raw --workers 4 --mix realistic
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from mixes import CONFIRMATION_PREFIX, check, realistic
from reference import reference_loop_ms, select1_round_trip_us
from twilio.request_validator import RequestValidator

ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent
PUBLIC_BASE = "https://hooks.bench.test"
TOKEN = "bench-twilio-auth-token"
STATION_NUMBER = "+12125550100"
PATH = "/webhooks/twilio/sms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class Procs:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (ppid, cpu seconds user+system, command line) for every process we can read."""
    table: dict[int, tuple[int, float, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, cmd)
    return table


def cpu_by_component(roots: dict[str, int], db_name: str) -> dict[str, float]:
    """CPU seconds used so far by each started process tree, and by the bench database's backends."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {}
    for name, root in roots.items():
        total, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            if pid in table:
                total += table[pid][1]
            stack.extend(children.get(pid, []))
        out[name] = total
    out["postgres"] = sum(
        cpu for _, cpu, cmd in table.values() if cmd.startswith("postgres:") and f" {db_name} " in cmd
    )
    return out


# Keyword texts as people send them, in the order they are used (six opt-outs, two opt-ins, two
# HELPs in every ten); each is a keyword to compliance.keywords.classify.
KEYWORDS = ("STOP", "Stop", "HELP", "stop", "START", "Stop please", "UNSUBSCRIBE", "help?", "Cancel", "UNSTOP",
            "STOP.", "Start", "stop!!", "INFO", "End", "Help", "Unsubscribe", "Yes", "STOP", "Stop")


def _sender_and_body(i: int, mix: str, senders: list[str]) -> tuple[str, str]:
    """Row i's sender and body (``senders``: the senders so far, in order; see the module docstring)."""
    plain = (f"+1415{2000000 + i % 7_999_999:07d}", f"Hi, is the 14th free for a party of {10 + i % 30}?")
    if mix == "plain" or i % 10 != 9:
        return plain
    k = i // 10  # the k-th keyword text
    body = KEYWORDS[k % len(KEYWORDS)]
    if k % 3 == 0 or len(senders) < 10:
        return f"+1628{2000000 + i % 7_999_999:07d}", body  # a number that never texted before
    if k % 3 == 1:
        return senders[-1], body  # the sender of the plain text just before
    return senders[-10], body  # the previous keyword's sender


def make_requests(n: int, mix: str = "plain", first: int = 0) -> list[tuple[str, bytes, dict[str, str]]]:
    validator = RequestValidator(TOKEN)
    out = []
    senders: list[str] = []
    texts = realistic(n, first) if mix == "realistic" else None
    for i in range(first, first + n):
        sid = "SM" + uuid.uuid4().hex
        sender, body = texts[i - first] if texts is not None else _sender_and_body(i, mix, senders)
        senders.append(sender)
        pairs = [
            ("ToCountry", "US"), ("ToState", "NY"), ("SmsMessageSid", sid), ("NumMedia", "0"), ("ToCity", ""),
            ("FromZip", "94105"), ("SmsSid", sid), ("FromState", "CA"), ("SmsStatus", "received"),
            ("FromCity", "SAN FRANCISCO"), ("Body", body),
            ("FromCountry", "US"), ("To", STATION_NUMBER), ("ToZip", ""), ("NumSegments", "1"),
            ("ReferralNumMedia", "0"), ("MessageSid", sid), ("AccountSid", "AC" + "1" * 32), ("From", sender),
            ("ApiVersion", "2010-04-01"),
        ]
        signature = validator.compute_signature(PUBLIC_BASE + PATH, dict(pairs))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
                   "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
        out.append((sid, urlencode(pairs).encode(), headers))
    return out


def listen(
    url: str, seen: dict[str, float], opted_out: dict[str, tuple[float, str]], stop: threading.Event,
    ready: threading.Event,
) -> None:
    """Timestamp commits: message rows (by MessageSid) and opt-out events (MessageSid -> (time, event id))."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN bench_msg")
        conn.execute("LISTEN bench_opt_out")
        ready.set()
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2):
                now = time.time()
                if note.channel == "bench_msg":
                    seen.setdefault(note.payload, now)
                else:
                    sid, _, event_id = note.payload.partition(" ")
                    opted_out.setdefault(sid, (now, event_id))


async def post_all(
    base: str, requests: list[tuple[str, bytes, dict[str, str]]], rate: float, concurrency: int, client: str = "httpx"
) -> tuple[dict[str, float], dict[str, float], dict[int, int]]:
    """POST every request; ``concurrency`` connections each send one request at a time.

    With a rate, request i is not started before t0 + i/rate (a late start is not made up by
    bunching: latency counts from the actual start).
    """
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    codes: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)
    t0 = time.monotonic()

    async def next_index() -> int | None:
        try:
            i = queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if rate > 0:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return i

    def record(sid: str, status: int) -> None:
        answered[sid] = time.time()
        codes[status] = codes.get(status, 0) + 1

    if client == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

            async def lane() -> None:
                while (i := await next_index()) is not None:
                    sid, body, headers = requests[i]
                    sent[sid] = time.time()
                    resp = await http.post(PATH, content=body, headers=headers)
                    record(sid, resp.status_code)

            await asyncio.gather(*(lane() for _ in range(concurrency)))
    else:
        host, port = base.removeprefix("http://").split(":")

        async def raw_lane() -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while (i := await next_index()) is not None:
                    sid, body, headers = requests[i]
                    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                    wire = (f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
                            ).encode() + body
                    sent[sid] = time.time()
                    writer.write(wire)
                    status_line = await reader.readline()
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    await reader.readexactly(length)
                    record(sid, int(status_line.split()[1]))
            finally:
                writer.close()

        await asyncio.gather(*(raw_lane() for _ in range(concurrency)))
    return sent, answered, codes


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"p50 {pct(values, 50):.0f} ms, p99 {pct(values, 99):.0f} ms, max {max(values):.0f} ms "
            f"(n={len(values)})")


def confirmation_latencies(
    plain_url: str, fake_base: str, opt_out_commits: dict[str, float]
) -> tuple[list[float], int]:
    """(ms from each sent opt-out confirmation's event commit to the fake accepting it, rows not paired).

    Per number, the confirmation rows that were sent (in the order they were queued) pair with
    the fake's accepted creates of a confirmation text to that number (in the order it got them).
    """
    from worker import pii

    with psycopg.connect(plain_url) as conn:
        rows = conn.execute(
            "SELECT to_encrypted, in_reply_to_event_id::text FROM core.outbound_messages "
            "WHERE idempotency_key LIKE 'consent-confirm:%%' AND provider_sid IS NOT NULL ORDER BY created_at, id"
        ).fetchall()
    queued: dict[str, list[str]] = {}
    for encrypted, event_id in rows:
        queued.setdefault(pii.decrypt(encrypted, kind="phone"), []).append(event_id)
    accepted: dict[str, list[float]] = {}
    for req in httpx.get(fake_base + "/_fake/requests", timeout=30).json()["requests"]:
        body = (req["form"].get("Body") or [""])[0]
        if req["method"] == "POST" and req["status"] == 201 and body.startswith(CONFIRMATION_PREFIX):
            to = req["form"]["To"][0]
            at = datetime.fromisoformat(req["at"]).timestamp()
            accepted.setdefault(to, []).append(at)
    latencies: list[float] = []
    unpaired = 0
    for number, events in queued.items():
        times = sorted(accepted.get(number, []))
        unpaired += abs(len(times) - len(events))
        for event_id, at in zip(events, times, strict=False):
            if event_id in opt_out_commits:
                latencies.append((at - opt_out_commits[event_id]) * 1000)
    return latencies, unpaired


def confirmation_steps(plain_url: str, opt_out_commits: dict[str, float]) -> tuple[list[float], list[float]]:
    """(ms from each measured opt-out's commit to its confirmation row being marked queued, to it being
    decided), from the bench-only trigger's record; a row sent without being queued first has no
    queued step."""
    queued: list[float] = []
    decided: list[float] = []
    with psycopg.connect(plain_url) as conn:
        rows = conn.execute(
            "SELECT o.in_reply_to_event_id::text, s.status, extract(epoch FROM s.at) FROM public.bench_confirm_steps s"
            " JOIN core.outbound_messages o ON o.id = s.id WHERE s.status IN ('queued', 'sending')"
        ).fetchall()
    for event_id, status, at in rows:
        if event_id in opt_out_commits:
            (queued if status == "queued" else decided).append((float(at) - opt_out_commits[event_id]) * 1000)
    return queued, decided


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="webhooks to post")
    parser.add_argument("--rate", type=float, default=0, help="offered webhooks/s (0: as fast as possible)")
    parser.add_argument("--concurrency", type=int, default=64, help="client connections in flight")
    parser.add_argument("--receivers", type=int, default=1, help="uvicorn worker processes (msgworker web --workers)")
    parser.add_argument("--workers", type=int, default=2, help="celery worker concurrency (processes)")
    parser.add_argument("--batch-size", type=int, default=100, help="INBOX_BATCH_SIZE")
    parser.add_argument("--warmup", type=int, default=200, help="webhooks posted (and awaited) before measuring")
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                        help="httpx.AsyncClient, or a minimal asyncio HTTP/1.1 client (less client CPU on 2 cores)")
    parser.add_argument("--mix", choices=["plain", "keywords10", "realistic"], default="plain",
                        help="plain texts only, every tenth a STOP/START/HELP keyword, or a station's real mix"
                             " (see above)")
    parser.add_argument("--no-sends", action="store_true",
                        help="start no beat: confirmations and replies stay queued (ingest alone)")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument("--profile-receiver", metavar="FILE", help="run the receiver (1 process) under cProfile")
    args = parser.parse_args()
    if args.mix == "realistic":
        check()

    name = f"msgworker_bench_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    plain_url = url.replace("+psycopg", "")
    redis_port = free_port()
    logdir = Path(f"/tmp/{name}")
    logdir.mkdir()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PII_KEYS": "b1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "PII_INDEX_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "INBOX_BATCH_SIZE": str(args.batch_size),
        "OUTBOUND_RATE_LIMIT_ENABLED": "false",
    }
    fake_port = free_port()
    env["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{fake_port}"
    os.environ.update(env)
    procs = Procs(logdir)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        from worker import migrate

        migrate.upgrade("head", url)
        with psycopg.connect(plain_url, autocommit=True) as conn:
            station = conn.execute(
                "INSERT INTO identity.stations (code, name, timezone, brand_name) "
                "VALUES ('BENCH', 'Bench', 'America/New_York', 'Bench') RETURNING id"
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO identity.station_senders (station_id, channel, address) VALUES (%s, 'sms', %s)",
                (station, STATION_NUMBER),
            )
            # Bench-only: a notification per message row, delivered when its transaction commits.
            conn.execute(
                "CREATE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_notify('bench_msg', NEW.provider_message_id); RETURN NULL; END $$"
            )
            conn.execute(
                "CREATE TRIGGER bench_notify AFTER INSERT ON core.messages FOR EACH ROW EXECUTE FUNCTION bench_notify()"
            )
            conn.execute(
                "CREATE FUNCTION bench_notify_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_notify('bench_opt_out', (NEW.evidence->>'provider_message_id') || ' ' || NEW.id); "
                "RETURN NULL; END $$"
            )
            conn.execute(
                "CREATE TRIGGER bench_notify_opt_out AFTER INSERT ON compliance.consent_events FOR EACH ROW "
                "WHEN (NEW.kind = 'opt_out') EXECUTE FUNCTION bench_notify_opt_out()"
            )
            # Bench-only: when each confirmation row changed status (queued by the release tick,
            # sending once decided), to say where its latency goes.
            conn.execute("CREATE TABLE public.bench_confirm_steps (id uuid, status text, at timestamptz, "
                         "PRIMARY KEY (id, status))")
            conn.execute(
                "CREATE FUNCTION bench_confirm_step() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "INSERT INTO public.bench_confirm_steps VALUES (NEW.id, NEW.status, clock_timestamp()) "
                "ON CONFLICT DO NOTHING; RETURN NULL; END $$"
            )
            conn.execute(
                "CREATE TRIGGER bench_confirm_step AFTER UPDATE OF status ON core.outbound_messages FOR EACH ROW "
                "WHEN (NEW.idempotency_key LIKE 'consent-confirm:%%' AND NEW.status IS DISTINCT FROM OLD.status) "
                "EXECUTE FUNCTION bench_confirm_step()"
            )

        roots: dict[str, int] = {}
        redis_cmd = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no"]
        roots["redis"] = procs.start("redis", redis_cmd, env).pid
        port = free_port()
        web = ["web", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.receivers)]
        if args.profile_receiver:
            wrapper = (
                "import cProfile, signal, sys, time; from worker.cli import app; "
                "p = cProfile.Profile(time.process_time); p.enable()\n"
                f"try:\n    app({web!r}, standalone_mode=False)\n"
                f"finally:\n    p.disable(); p.dump_stats({args.profile_receiver!r})"
            )
            cmd = [sys.executable, "-c", wrapper]
        else:
            cmd = [str(BIN / "msgworker"), *web]
        roots["receiver"] = procs.start("receiver", cmd, env).pid
        worker_cmd = [str(BIN / "celery"), "-A", "worker", "worker", "--pool=prefork", f"--concurrency={args.workers}",
                      "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "WARNING",
                      "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"]
        roots["worker"] = procs.start("worker", worker_cmd, env).pid
        fake_base = env["TWILIO_API_BASE_URL"]
        roots["fake_twilio"] = procs.start(
            "fake_twilio", [str(BIN / "msgworker"), "fake-twilio", "--port", str(fake_port), "--callbacks", ""], env
        ).pid
        if not args.no_sends:
            roots["beat"] = procs.start(
                "beat", [str(BIN / "celery"), "-A", "worker", "beat", "-l", "WARNING", "--schedule",
                         str(logdir / "celerybeat-schedule")], env
            ).pid
        base = f"http://127.0.0.1:{port}"

        def receiver_up() -> bool:
            try:
                return httpx.get(base + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(receiver_up, 30, "receiver /readyz")

        seen: dict[str, float] = {}
        opted_out: dict[str, tuple[float, str]] = {}
        stop = threading.Event()
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(plain_url, seen, opted_out, stop, ready), daemon=True)
        listener.start()
        ready.wait(10)

        # The warm-up runs the same mix (the consent path warms up too), from senders the
        # measured run does not use.
        warm = make_requests(args.warmup, args.mix, first=args.n)
        asyncio.run(post_all(base, warm, 0, min(args.concurrency, 16)))
        wait_until(lambda: all(s in seen for s, _, _ in warm), 120, "warm-up rows")

        # The receiver finds `worker` on PYTHONPATH (else the installed checkout); celery looks in
        # its working directory first. Both ways must give the code meant to be measured.
        probe = "import os, worker; print(os.path.dirname(worker.__file__))"
        code = {subprocess.run([sys.executable, *flags, "-c", probe], env=env, capture_output=True, text=True,
                               check=True).stdout.strip() for flags in (["-P"], [])}
        print(f"code: the processes import {' and '.join(sorted(code))} (cwd {os.getcwd()}, "
              f"PYTHONPATH {os.environ.get('PYTHONPATH', '-')})" + ("" if len(code) == 1 else ": MIXED"))
        with open("/proc/loadavg") as f:
            print(f"load average at the start: {f.read().split()[:3]}")
        loop_before = reference_loop_ms()
        select1_before = select1_round_trip_us(plain_url)
        requests = make_requests(args.n, args.mix)
        print(f"posting {args.n} signed webhooks with {args.client} (rate={args.rate or 'max'}, "
              f"concurrency={args.concurrency}, "
              f"receivers={args.receivers}, worker concurrency={args.workers}, batch={args.batch_size}, "
              f"mix={args.mix})")
        cpu_before = cpu_by_component(roots, name)
        client_before = time.process_time()
        sent, answered, codes = asyncio.run(post_all(base, requests, args.rate, args.concurrency, args.client))
        sids = [s for s, _, _ in requests]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not all(s in seen for s in sids):
            time.sleep(0.05)
        cpu_after = cpu_by_component(roots, name)
        # The confirmations still on their way (release tick, send task) before the figures.
        with psycopg.connect(plain_url, autocommit=True) as conn:
            wait_until(lambda: args.no_sends or conn.execute(
                "SELECT count(*) FROM core.outbound_messages WHERE status IN ('pending', 'queued', 'sending')"
            ).fetchone()[0] == 0, 120, "the outbox to settle")  # type: ignore[index]
        stop.set()
        cpu_after["client"] = time.process_time() - client_before
        cpu_before["client"] = 0.0
        missing = [s for s in sids if s not in seen]

        first_post = min(sent.values())
        last_answer = max(answered.values())
        latencies = [(seen[s] - sent[s]) * 1000 for s in sids if s in seen]
        http = [(answered[s] - sent[s]) * 1000 for s in sids]
        last_row = max(seen[s] for s in sids if s in seen)
        with psycopg.connect(plain_url) as conn:
            rows = conn.execute("SELECT count(*) FROM core.messages").fetchone()[0]  # type: ignore[index]
            inbox = dict(conn.execute("SELECT status, count(*) FROM core.webhook_inbox GROUP BY 1").fetchall())
        print(f"HTTP status counts: {codes}")
        print(f"receiver: {args.n / (last_answer - first_post):.0f} requests/s "
              f"(HTTP p50 {pct(http, 50):.1f} ms, p99 {pct(http, 99):.1f} ms)")
        print(f"end to end: {len(latencies) / (last_row - first_post):.0f} webhooks/s committed as message rows")
        print(f"webhook-to-row latency: p50 {pct(latencies, 50):.0f} ms, p99 {pct(latencies, 99):.0f} ms, "
              f"max {max(latencies):.0f} ms, mean {statistics.fmean(latencies):.0f} ms")
        print(f"rows: {rows} messages, inbox {inbox}, missing {len(missing)}")
        with psycopg.connect(plain_url) as conn:
            events = dict(conn.execute("SELECT kind, count(*) FROM compliance.consent_events GROUP BY 1").fetchall())
            outbox = dict(conn.execute(
                "SELECT split_part(idempotency_key, ':', 1) || '/' || status, count(*) FROM core.outbound_messages "
                "GROUP BY 1").fetchall())
            reviews = conn.execute("SELECT count(*) FROM compliance.review_items").fetchone()[0]  # type: ignore[index]
        print(f"consent events by kind (warm-up included): {events}; review items {reviews}; outbox {outbox}")
        measured = set(sids)
        honour = [(at - sent[sid]) * 1000 for sid, (at, _) in opted_out.items() if sid in measured]
        print(f"STOP honour latency (POST start -> opt-out committed): {spread(honour)}")
        commits = {event_id: at for sid, (at, event_id) in opted_out.items() if sid in measured}
        confirm, unpaired = confirmation_latencies(plain_url, fake_base, commits)
        print(f"confirmation latency (opt-out committed -> accepted by the fake Twilio): {spread(confirm)}"
              + (f"; {unpaired} confirmation(s) not paired" if unpaired else ""))
        queued_after, decided_after = confirmation_steps(plain_url, commits)
        print(f"  of which opt-out committed -> row queued by the release tick: {spread(queued_after)}; "
              f"-> decided (status sending): {spread(decided_after)}")
        per = {k: (cpu_after[k] - cpu_before[k]) * 1000 / args.n for k in cpu_after}
        print("CPU ms per webhook: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
              + f"; total {sum(per.values()):.2f} (2 cores = {2000 / sum(per.values()):.0f} webhooks/s if CPU-bound)")
        with open("/proc/loadavg") as f:
            print(f"load average at the end: {f.read().split()[:3]}")
        loop_after = reference_loop_ms()
        select1_after = select1_round_trip_us(plain_url)
        print(f"same-run reference, before / after the run: pure-Python loop best {loop_before:.1f} / "
              f"{loop_after:.1f} ms; prepared select 1 round trip median {select1_before[0]:.0f} / "
              f"{select1_after[0]:.0f} us, p99 {select1_before[1]:.0f} / {select1_after[1]:.0f} us")
        if missing or any(code != 200 for code in codes):
            sys.exit(1)
    finally:
        procs.stop_all()
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        print(f"logs: {logdir}" + ("" if args.keep else " (database dropped)"))


if __name__ == "__main__":
    main()
