"""The opt-out audit report over a 1,000,000-event ledger: time and peak memory of the real command.

    .venv/bin/python bench/report.py --numbers 909091 --keep     # ~1,000,000 events; keeps the database
    .venv/bin/python bench/report.py --database <kept name>      # measure again on it

Goal (issue 11): the report over 1,000,000 consent events in at most 30 s and 200 MB peak RSS,
with memory flat as the range grows, so it runs twice: over a range holding about 100,000
events, and over the whole ledger.

The ledger is loaded by bench/consent.py's binary-COPY loader (``_load``: one event per
number, a second for every 10th, station-scoped every 20th; real blind indexes, ciphertexts,
chained hashes and matching state rows), shaped like real traffic: every third number's
event is an SMS STOP with the evidence the inbound path records (recorded 20-80 ms after
receipt), the others' a web-form marketing consent, the extra events SMS STARTs. Then, with
INSERT ... SELECT, each STOP gets its confirmation (sent 2 s after) and a marketing text
decided an hour before it (lawful, and read by the report's outbox lookup). There are no
message rows: the report's join to core.messages probes its index and finds none.

Each measurement runs ``msgworker report opt-outs --out`` as a subprocess and samples the peak
RSS of it and of the second process it starts from /proc (``TreeMemory``): the goal counts the
two together. The same-run references (bench/reference.py) and the load average go
with the figures, because this machine's speed moves 2-3x with other work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from consent import ADMIN, _load, _setup_db
from reference import reference_loop_ms, select1_round_trip_us

ROOT = Path(__file__).resolve().parents[1]
CONFIRMATIONS = """
INSERT INTO core.outbound_messages (idempotency_key, station_id, to_encrypted, to_index, body, purpose,
    in_reply_to_event_id, status, gate_decision, gate_basis, decided_at, sent_at, provider_sid, created_at, not_before)
SELECT 'consent-confirm:' || e.id, CAST(e.evidence->>'received_station_id' AS uuid), e.phone_encrypted, e.phone_index,
       'Bench: You''re unsubscribed and will get no more texts from us. Reply START to resubscribe.', 'compliance',
       e.id, 'sent', 'allowed', jsonb_build_object('events', jsonb_build_array(e.id::text)),
       e.recorded_at + interval '1 second', e.recorded_at + interval '2 seconds', 'SM' || md5(e.id::text),
       e.recorded_at, e.recorded_at
FROM compliance.consent_events e WHERE e.kind = 'opt_out'
"""
EARLIER_TEXTS = """
INSERT INTO core.outbound_messages (idempotency_key, station_id, to_encrypted, to_index, body, purpose, status,
    gate_decision, gate_basis, decided_at, sent_at, provider_sid, created_at, not_before)
SELECT 'bench-promo:' || e.id, CAST(e.evidence->>'received_station_id' AS uuid), e.phone_encrypted, e.phone_index,
       'Bench: 20% off this weekend. Reply STOP to opt out.', 'marketing', 'delivered', 'allowed', '{}'::jsonb,
       e.occurred_at - interval '1 hour', e.occurred_at - interval '1 hour', 'SM' || md5('p' || e.id::text),
       e.occurred_at - interval '2 hours', e.occurred_at - interval '2 hours'
FROM compliance.consent_events e WHERE e.kind = 'opt_out'
"""


def _shape(stations: list[uuid.UUID]):  # type: ignore[no-untyped-def]
    codes = [str(s) for s in stations]

    def shape(i: int, k: int, kind: str, occurred: datetime) -> tuple[str, dict[str, object], str, datetime]:
        recorded = occurred + timedelta(milliseconds=20 + i % 60)
        if kind == "marketing_consent":
            evidence: dict[str, object] = {"form": "booking-checkout", "disclosure_version": "2025-01",
                                           "ip": f"203.0.113.{i % 250}", "consented_at": occurred.isoformat()}
            return "web_form", evidence, f"web:{i}:{k}", recorded
        sid = f"SM{uuid.UUID(int=i * 4 + k).hex}"
        body, rule, matched = ("STOP", "exact_keyword", "stop") if kind == "opt_out" else ("START", "exact_keyword",
                                                                                       "start")
        evidence = {
            "provider_message_id": sid, "message_id": str(uuid.UUID(int=(i * 4 + k) << 64)),
            "received_station_id": codes[i % len(codes)], "channel": "sms", "to_address": "+12125550100",
            "messaging_service_sid": None, "raw_body": body, "opt_out_type": None,
            "classification": {"intent": kind, "matched": matched, "language": "en", "rule": rule,
                               "scope_all": False, "classifier_version": "2026.12.1"},
            "source": "sms_keyword", "received_at": occurred.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }  # fmt: skip
        return "sms_keyword", evidence, f"sms:{sid}:{kind}", recorded

    return shape


def _load_all(dsn: str, numbers: int) -> None:
    with psycopg.connect(dsn) as conn:
        stations = []
        for s in range(20):
            row = conn.execute(
                "INSERT INTO identity.stations (code, name, timezone, brand_name) "
                "VALUES (%s, %s, 'America/New_York', 'Bench') RETURNING id",
                (f"B{s:03d}", f"Bench {s}"),
            ).fetchone()
            assert row is not None
            stations.append(row[0])
        conn.commit()
    _, seconds = _load(dsn, numbers, stations, shape=_shape(stations))
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute(CONFIRMATIONS)  # type: ignore[arg-type]
        conn.execute(EARLIER_TEXTS)  # type: ignore[arg-type]
        conn.commit()
        conn.execute("ANALYZE core.outbound_messages")
        conn.commit()
    print(f"loaded: ledger {seconds:.0f} s, outbox {time.perf_counter() - t0:.0f} s")


def _counts(dsn: str, start: date, end: date) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE kind IN ('opt_out', 'carrier_opt_out')) "
            "FROM compliance.consent_events WHERE occurred_at >= %s AND occurred_at < %s",
            (datetime.combine(start, datetime.min.time(), UTC),
             datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class TreeMemory:
    """Peak memory of a command and every process it starts, sampled every 10 ms from /proc.

    The export runs a second process (worker/reports/beside.py), so the figure that counts is
    the two together: ``peak_sum`` is the largest sampled sum of their resident sets, and
    ``per_process`` each one's own peak (VmHWM, exact). The sum of the per-process peaks bounds
    ``peak_sum`` from above whatever the sampling missed.
    """

    def __init__(self, root: int) -> None:
        self.root, self.per_process, self.peak_sum = root, dict[int, int](), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree, total = [self.root], 0
            while tree:
                pid = tree.pop()
                tree.extend(_children(pid))
                hwm, rss = _status_kib(pid, "VmHWM:"), _status_kib(pid, "VmRSS:")
                if hwm is not None:
                    self.per_process[pid] = max(self.per_process.get(pid, 0), hwm)
                total += rss or 0
            self.peak_sum = max(self.peak_sum, total)
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Memory:
    processes: list[float]  # each process's peak RSS, MiB, in pid order (the export first)
    sampled_sum: float  # the largest sum of the tree's resident sets seen at one moment, MiB

    @property
    def sum_of_peaks(self) -> float:
        return sum(self.processes)


def _run_report(url: str, start: date, end: date, out: Path) -> tuple[float, Memory, str]:
    """(wall seconds, peak memory in MiB, the command's output) of one real export.

    Memory is sampled from /proc (``TreeMemory``): every process's own peak and the two together.
    """
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "msgworker"), "report", "opt-outs", "--from", start.isoformat(),
         "--to", end.isoformat(), "--out", str(out), "--by", "bench"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    memory = TreeMemory(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    memory.stop()
    if proc.returncode not in (0, 2):
        raise SystemExit(f"report failed ({proc.returncode}):\n{stdout}{stderr}")
    peaks = [kib / 1024 for _pid, kib in sorted(memory.per_process.items())]
    return wall, Memory(peaks, memory.peak_sum / 1024), stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=909_091, help="numbers in the ledger (1.1 events each)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (prints its name)")
    parser.add_argument("--database", help="measure an existing database loaded by an earlier --keep run")
    parser.add_argument("--range", choices=("both", "100k", "whole"), default="both", help="which export(s) to run")
    args = parser.parse_args()
    if args.database:
        name, args.keep = args.database, True
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        name = f"msgworker_bench_report_{uuid.uuid4().hex[:8]}"
        url = _setup_db(name)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        if not args.database:
            _load_all(dsn, args.numbers)
        loop_ms = reference_loop_ms()
        p50, p99 = select1_round_trip_us(dsn)
        print(f"reference: pure-Python loop {loop_ms:.0f} ms; select 1 p50 {p50:.0f} us p99 {p99:.0f} us; "
              f"load {os.getloadavg()[0]:.2f}")
        with tempfile.TemporaryDirectory() as tmp:
            for label, start, end in (
                ("~100k events", date(2025, 1, 1), date(2025, 2, 1)),
                ("whole ledger", date(2025, 1, 1), date(2025, 12, 31)),
            ):
                if args.range != "both" and not label.startswith({"100k": "~100k", "whole": "whole"}[args.range]):
                    continue
                events, revocations = _counts(dsn, start, end)
                load = os.getloadavg()[0]
                wall, mem, output = _run_report(url, start, end, Path(tmp) / f"{label[:5].strip()}.zip")
                each = " + ".join(f"{m:.0f}" for m in mem.processes)
                print(f"{label}: {start}..{end}, {events} events, {revocations} revocations: {wall:.1f} s; "
                      f"peak RSS {mem.sum_of_peaks:.0f} MiB summed over the processes ({each}), "
                      f"{mem.sampled_sum:.0f} MiB together at one moment (load {load:.2f} before)")
                print("  " + output.replace("\n", "\n  "))
        print(f"reference after: pure-Python loop {reference_loop_ms():.0f} ms; load {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep:
            print(f"database kept: {name} (re-measure with --database {name}; drop it when done)")
        else:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
