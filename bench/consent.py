"""Consent state lookup latency with 1,000,000 numbers in the ledger (goal: p99 under 1 ms).

    .venv/bin/python bench/consent.py --numbers 1000000 --lookups 10000

Builds a scratch database with the migrations, bulk-loads a realistic ledger with binary
COPY (one event per number, a second one for every 10th, a station-scoped row for every
20th; real blind indexes, real AES-GCM ciphertexts, real chained hashes, state rows that
match the replay), then times the gate's lookup: ``worker.consent.state.covering_state``
(business row + the station's row, one indexed query) for random numbers, and the same
under the per-number advisory lock the send path takes first. ``--verify`` also times
``ledger verify`` over the whole ledger. The database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from compliance.consent_hash import HashInput, event_hash
from compliance.consent_rules import ConsentSnapshot, EventFacts, apply_event

ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
EVENT_COLS = [
    "id", "phone_index", "phone_encrypted", "station_id", "kind", "purpose", "source", "evidence",
    "occurred_at", "recorded_at", "idempotency_key", "prev_hash", "hash",
]
EVENT_TYPES = [
    "uuid", "bytea", "text", "uuid", "text", "text", "text", "jsonb",
    "timestamptz", "timestamptz", "text", "bytea", "bytea",
]
STATE_COLS = [
    "phone_index", "phone_encrypted", "station_id", "opted_out", "marketing_opted_out", "opted_out_at",
    "opt_out_event_id", "marketing_consent", "marketing_consent_event_id", "marketing_consent_at",
    "pending_review", "last_event_id", "last_event_seq", "last_event_hash",
]
STATE_TYPES = [
    "bytea", "text", "uuid", "bool", "bool", "timestamptz", "uuid", "bool", "uuid", "timestamptz",
    "bool", "uuid", "int8", "bytea",
]


def _setup_db(name: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("APP_ENV", "test")
    from worker import migrate

    migrate.upgrade("head", url)
    return url


# (number i, its k-th event, kind, occurred_at) -> (source, evidence, idempotency key, recorded_at):
# how another benchmark (bench/report.py) makes the events look like real ones.
EventShape = Callable[[int, int, str, datetime], tuple[str, dict[str, object], str, datetime]]


def _load(
    dsn: str, numbers: int, stations: list[uuid.UUID], shape: EventShape | None = None
) -> tuple[list[bytes], float]:
    from worker import pii

    ring = pii.keyring()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    recorded = datetime.now(UTC)
    indexes: list[bytes] = []
    started = time.perf_counter()
    seq = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        copy_events = f"COPY compliance.consent_events ({', '.join(EVENT_COLS)}) FROM STDIN (FORMAT BINARY)"
        with cur.copy(copy_events) as ev_copy:
            ev_copy.set_types(EVENT_TYPES)
            states: list[tuple[object, ...]] = []
            for i in range(numbers):
                e164 = f"+1{201 + i // 8_000_000}{2_000_000 + i % 8_000_000:07d}"
                idx = ring.blind_index(e164, kind="phone")
                enc = ring.encrypt(e164, kind="phone")
                indexes.append(idx)
                station = stations[i % len(stations)] if i % 20 == 0 else None
                kinds = [("opt_out", "all")] if i % 3 == 0 else [("marketing_consent", "marketing")]
                if i % 10 == 0:
                    kinds.append(("opt_in", "all"))
                prev: bytes | None = None
                snap = ConsentSnapshot()
                for k, (kind, purpose) in enumerate(kinds):
                    ev_id = uuid.uuid4()
                    occurred = base + timedelta(minutes=i % 500_000, seconds=k)
                    if shape is None:
                        source, evidence, key, at = "import", {"bench": True, "n": i}, f"bench:{i}:{k}", recorded
                    else:
                        source, evidence, key, at = shape(i, k, kind, occurred)
                    digest = event_hash(
                        HashInput(ev_id, idx, station, kind, purpose, source, evidence, occurred, at, key, prev)
                    )
                    ev_copy.write_row(
                        [ev_id, idx, enc, station, kind, purpose, source, Jsonb(evidence), occurred, at,
                         key, prev, digest]
                    )
                    seq += 1
                    snap = apply_event(snap, EventFacts(ev_id, seq, digest, kind, purpose, station, occurred))
                    prev = digest
                states.append(
                    (idx, enc, station, snap.opted_out, snap.marketing_opted_out, snap.opted_out_at,
                     snap.opt_out_event_id, snap.marketing_consent, snap.marketing_consent_event_id,
                     snap.marketing_consent_at, snap.pending_review, snap.last_event_id, snap.last_event_seq,
                     snap.last_event_hash)
                )
        with cur.copy(f"COPY compliance.consent_state ({', '.join(STATE_COLS)}) FROM STDIN (FORMAT BINARY)") as st_copy:
            st_copy.set_types(STATE_TYPES)
            for row in states:
                st_copy.write_row(row)
        conn.commit()
        cur.execute("ANALYZE compliance.consent_events")
        cur.execute("ANALYZE compliance.consent_state")
        conn.commit()
        cur.execute("SELECT max(seq), count(*) FROM compliance.consent_events")
        max_seq, count = cur.fetchone()  # type: ignore[misc]
        assert max_seq == count == seq, "seq must follow COPY order for the state rows to match"
    return indexes, time.perf_counter() - started


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _measure(indexes: list[bytes], stations: list[uuid.UUID], lookups: int, with_lock: bool) -> list[float]:
    from worker.consent.state import covering_state
    from worker.db import get_sessionmaker
    from worker.locks import lock_number

    rng = random.Random(42)
    samples: list[float] = []
    session = get_sessionmaker()()
    try:
        for n in range(lookups + 200):
            idx = indexes[rng.randrange(len(indexes))]
            station = stations[rng.randrange(len(stations))]
            t0 = time.perf_counter()
            if with_lock:
                with session.begin():
                    lock_number(session, idx)
                    covering_state(session, idx, station)
            else:
                covering_state(session, idx, station)
            elapsed = time.perf_counter() - t0
            if n >= 200:  # warm-up: connection, statement cache
                samples.append(elapsed * 1000)
        session.rollback()
    finally:
        session.close()
    return samples


def _measure_raw(dsn: str, indexes: list[bytes], stations: list[uuid.UUID], lookups: int) -> list[float]:
    """The same query on a bare psycopg connection (prepared): the database's share of the time."""
    from worker.consent.state import COVERING_SQL

    rng = random.Random(42)
    samples: list[float] = []
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        sql = COVERING_SQL
        for n in range(lookups + 200):
            params = {"phone_index": indexes[rng.randrange(len(indexes))],
                      "station_id": stations[rng.randrange(len(stations))]}
            t0 = time.perf_counter()
            conn.execute(sql, params).fetchall()  # type: ignore[call-overload]
            if n >= 200:
                samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--verify", action="store_true", help="also time `ledger verify` over the whole ledger")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (prints its name)")
    parser.add_argument("--database", help="measure an existing database loaded by an earlier --keep run")
    args = parser.parse_args()
    if args.database:
        name = args.database
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("APP_ENV", "test")
        args.keep = True
    else:
        name = f"msgworker_bench_consent_{uuid.uuid4().hex[:8]}"
        url = _setup_db(name)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        if args.database:
            with psycopg.connect(dsn) as conn:
                stations = [r[0] for r in conn.execute("SELECT id FROM identity.stations WHERE code LIKE 'B%'")]
                indexes = [bytes(r[0]) for r in conn.execute("SELECT phone_index FROM compliance.consent_state")]
            load_s = 0.0
        else:
            with psycopg.connect(dsn) as conn:
                stations = []
                for s in range(20):
                    sid = conn.execute(
                        "INSERT INTO identity.stations (code, name, timezone, brand_name) "
                        "VALUES (%s, %s, 'America/New_York', 'Bench') RETURNING id",
                        (f"B{s:03d}", f"Bench {s}"),
                    ).fetchone()[0]  # type: ignore[index]
                    stations.append(sid)
                conn.commit()
            indexes, load_s = _load(dsn, args.numbers, stations)
        with psycopg.connect(dsn) as conn:
            events, states = conn.execute(
                "SELECT (SELECT count(*) FROM compliance.consent_events), "
                "(SELECT count(*) FROM compliance.consent_state)"
            ).fetchone()  # type: ignore[misc]
        print(f"ledger: {events} events, {states} state rows" + (f"; loaded in {load_s:.0f}s" if load_s else ""))
        runs = [
            ("psycopg, same SQL, prepared (database share)",
             lambda: _measure_raw(dsn, indexes, stations, args.lookups)),
            ("covering_state", lambda: _measure(indexes, stations, args.lookups, False)),
            ("lock_number + covering_state (one transaction each)",
             lambda: _measure(indexes, stations, args.lookups, True)),
        ]
        for label, measure in runs:
            samples = measure()
            print(
                f"{label}: n={len(samples)} p50={statistics.median(samples):.3f} ms "
                f"p99={_pct(samples, 99):.3f} ms max={max(samples):.3f} ms"
            )
        if args.verify:
            from worker.consent.ledger import verify_ledger
            from worker.db import session_scope

            t0 = time.perf_counter()
            with session_scope() as session:
                report = verify_ledger(session)
            print(f"ledger verify: ok={report.ok} {report.events} events in {time.perf_counter() - t0:.0f}s")
    finally:
        if args.keep:
            print(f"database kept: {name} (re-measure with --database {name}; drop it when done)")
        else:
            from worker.db import reset_engine

            reset_engine()
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
