"""The dashboard's overview for one station with 1,000,000 consent events (goal: renders in under 1 s).

    .venv/bin/python bench/dashboard.py --events 1000000 --rounds 15

Builds a scratch database with the migrations and loads the ledger with bench/consent.py's
binary-COPY loader, every event received through one station (``received_station_id`` in its
evidence, as an inbound STOP records it; one in 20 also scoped to the station), opt-outs and
opt-ins as keyword texts honoured 0.05-0.5 s after receipt, marketing consents from a web
form; then each opt-out's confirmation (a sent compliance text 1-4 s later) and one customer
row per number at the station, so a STATION_MANAGER's request sees the business-wide rows too.
A second station holds a tenth as many events (every 11th number), so the station filter has
something to skip.

It then times ``GET /dashboard/?station=...&from=...&to=...`` end to end in-process (ASGI, no
network): the session lookup, the page's transaction as ``msgworker_api`` under row-level
security, the overview statement, the template and the two SVG charts, for
- an ADMIN choosing the station, and the station's STATION_MANAGER;
- the overview's default span (30 days) and the whole year the ledger covers (every event).
The figures shown are checked against counts read straight from the tables, so a fast wrong
page cannot pass. Same-run references (bench/reference.py) and the load average are printed;
the database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consent import ADMIN, _load, _pct, _setup_db
from reference import reference_loop_ms, select1_round_trip_us

RANGES = {"30 days": (date(2025, 6, 1), date(2025, 6, 30)), "whole year": (date(2025, 1, 1), date(2025, 12, 31))}
_FIGURE = re.compile(r'id="figures-h">(\d+) opt-out')


def _shape(big: uuid.UUID, small: uuid.UUID):  # type: ignore[no-untyped-def]
    """Every 11th number texted the small station, the rest the measured one."""

    def shape(i: int, k: int, kind: str, occurred: datetime) -> tuple[str, dict[str, object], str, datetime]:
        source = "web_form" if kind == "marketing_consent" else "sms_keyword"
        station = small if i % 11 == 0 else big
        evidence: dict[str, object] = {"received_station_id": str(station), "raw_body": "STOP", "n": i}
        honoured = occurred + timedelta(milliseconds=50 + (i * 37) % 450)
        return source, evidence, f"bench:{i}:{k}", honoured

    return shape


def _stations(dsn: str) -> tuple[uuid.UUID, uuid.UUID]:
    with psycopg.connect(dsn) as conn:
        ids = [conn.execute("INSERT INTO identity.stations (code, name, timezone, brand_name) "
                            "VALUES (%s, %s, 'America/New_York', 'Bench') RETURNING id",
                            (code, code)).fetchone()[0] for code in ("BIG01", "SMALL01")]  # type: ignore[index]
        conn.commit()
    return ids[0], ids[1]


def _extras(dsn: str, station: uuid.UUID) -> None:
    """Confirmations for every opt-out, and a customer row per number at the station."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO core.outbound_messages (idempotency_key, station_id, to_encrypted, to_index, body, purpose, "
            "in_reply_to_event_id, status, gate_decision, gate_reason, decided_at, sent_at, created_at) "
            "SELECT 'bench-conf:' || e.id, %(s)s, e.phone_encrypted, e.phone_index, 'You are unsubscribed.', "
            "'compliance', e.id, 'sent', 'allowed', 'compliance_confirmation', e.recorded_at, "
            "e.recorded_at + make_interval(secs => 1 + (e.seq %% 3)), e.recorded_at "
            "FROM compliance.consent_events e WHERE e.kind = 'opt_out' "
            "AND compliance.received_station(e.station_id, e.evidence) = %(s)s", {"s": station})
        conn.execute(
            "INSERT INTO core.customers (station_id, phone_index, phone_encrypted, source) "
            "SELECT DISTINCT ON (phone_index) %(s)s, phone_index, phone_encrypted, 'import' "
            "FROM compliance.consent_events WHERE compliance.received_station(station_id, evidence) = %(s)s",
            {"s": station})
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()


def _expected(dsn: str, station: uuid.UUID, first: date, last: date) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM compliance.consent_events WHERE kind IN ('opt_out', 'carrier_opt_out', "
            "'marketing_consent_revoked') AND compliance.received_station(station_id, evidence) = %s "
            "AND occurred_at >= %s AND occurred_at < %s",
            (station, datetime(first.year, first.month, first.day, tzinfo=UTC),
             datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1))).fetchone()
    assert row is not None
    return int(row[0])


def _time_pages(secret_by_role: dict[str, str], expected: dict[str, int], rounds: int) -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from worker.web.dashboard.app import MOUNT_PATH, create_dashboard_app

    app = FastAPI()
    app.mount(MOUNT_PATH, create_dashboard_app())
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for role, token in secret_by_role.items():
            client.cookies.clear()
            form = client.get("/dashboard/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            assert client.post("/dashboard/sign-in", data={"method": "token", "token": token, "csrf_token": csrf},
                               follow_redirects=False).status_code == 303
            for label, (first, last) in RANGES.items():
                url = f"/dashboard/?station=BIG01&from={first}&to={last}"
                samples: list[float] = []
                for n in range(rounds + 2):
                    t0 = time.perf_counter()
                    page = client.get(url)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert page.status_code == 200, page.text[:500]
                    shown = _FIGURE.search(page.text)
                    assert shown is not None, page.text[:500]
                    assert int(shown.group(1)) == expected[label], (shown.group(1), expected[label])
                    if n >= 2:  # warm-up: first plan, template compile
                        samples.append(elapsed)
                print(f"{role:<16} {label:<10} ({expected[label]:>7} opt-outs shown): n={len(samples)} "
                      f"p50={statistics.median(samples):.0f} ms p99={_pct(samples, 99):.0f} ms "
                      f"max={max(samples):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000, help="consent events at the measured station")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (prints its name)")
    parser.add_argument("--database", help="measure a database loaded by an earlier --keep run")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    if args.database:
        name, args.keep = args.database, True
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("APP_ENV", "test")
    else:
        name = f"msgworker_bench_dashboard_{uuid.uuid4().hex[:8]}"
        url = _setup_db(name)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        t0 = time.perf_counter()
        if args.database:
            with psycopg.connect(dsn) as conn:
                found = conn.execute("SELECT id FROM identity.stations WHERE code = 'BIG01'").fetchone()
            assert found is not None, "not a database made by this benchmark"
            big = found[0]
        else:
            big, small = _stations(dsn)
            # The loader writes 1.1 events per number; 10 numbers in 11 are the measured station's.
            numbers = round(args.events / 1.1 * 11 / 10)
            _load(dsn, numbers, [big], _shape(big, small))
            _extras(dsn, big)
        with psycopg.connect(dsn) as conn:
            at_big = conn.execute("SELECT count(*) FROM compliance.consent_events "
                                  "WHERE compliance.received_station(station_id, evidence) = %s", (big,)).fetchone()
            total = conn.execute("SELECT count(*) FROM compliance.consent_events").fetchone()
        assert at_big is not None
        assert total is not None
        print(f"ledger: {total[0]} events, {at_big[0]} through the measured station; loaded in "
              f"{time.perf_counter() - t0:.0f} s")
        from worker.audit import Actor
        from worker.db import session_scope
        from worker.identity import tokens
        from worker.models import UserRole

        with session_scope() as s:
            secrets = {
                "ADMIN": tokens.create_token(s, name="bench-admin", role=UserRole.ADMIN,
                                             actor=Actor.cli("bench")).secret,
                "STATION_MANAGER": tokens.create_token(s, name="bench-manager", role=UserRole.STATION_MANAGER,
                                                       station_ids=[big], actor=Actor.cli("bench")).secret,
            }
        expected = {label: _expected(dsn, big, first, last) for label, (first, last) in RANGES.items()}
        print(f"reference: pure-Python loop {reference_loop_ms():.1f} ms; select 1 round trip "
              "p50 {:.0f} us p99 {:.0f} us".format(*select1_round_trip_us(dsn)))
        _time_pages(secrets, expected, args.rounds)
        print(f"reference: pure-Python loop {reference_loop_ms():.1f} ms; select 1 round trip "
              "p50 {:.0f} us p99 {:.0f} us".format(*select1_round_trip_us(dsn)))
        print(f"load average at end: {os.getloadavg()}")
    finally:
        if args.keep:
            print(f"database kept: {name}")
        else:
            from worker.db import reset_engine

            reset_engine()
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
