"""Throughput of `msgworker pii rotate`: customers re-encrypted per second, end to end.

Builds a scratch database with the migrations, inserts N customers (phone, e-mail and address
encrypted under an old key), then runs the real `msgworker pii rotate` process with a new key
put first, timing it, and checks that every value moved to the new key. The database is
dropped afterwards.

    .venv/bin/python bench/pii_rotate.py --customers 20000 --batch-size 500
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OLD = "old1:" + base64.urlsafe_b64encode(b"bench-old-pii-key-0123456789abcd").decode()
NEW = "new1:" + base64.urlsafe_b64encode(b"bench-new-pii-key-0123456789abcd").decode()
INDEX = base64.urlsafe_b64encode(b"bench-index-key-0123456789abcdef").decode()
BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    name = f"msgworker_bench_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": url, "PII_KEYS": OLD, "PII_INDEX_KEY": INDEX}
    os.environ.update(env)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        from worker import migrate
        from worker.pii import KeyRing

        migrate.upgrade("head", url)
        ring = KeyRing.parse(OLD, INDEX)
        t0 = time.perf_counter()
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            station = conn.execute(
                "INSERT INTO identity.stations (code, name, timezone, brand_name) "
                "VALUES ('B1', 'Bench', 'America/New_York', 'Bench') RETURNING id"
            ).fetchone()[0]  # type: ignore[index]
            rows = []
            for i in range(args.customers):
                phone = f"+1415{2000000 + i:07d}"
                rows.append(
                    (
                        station,
                        ring.encrypt(phone, kind="phone"),
                        ring.blind_index(phone, kind="phone"),
                        ring.encrypt(f"c{i}@example.test", kind="email"),
                        ring.blind_index(f"c{i}@example.test", kind="email"),
                        ring.encrypt(f"{i} Elm St, Springfield", kind="address"),
                    )
                )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO core.customers (station_id, phone_encrypted, phone_index, email_encrypted, "
                    "email_index, address_encrypted) VALUES (%s, %s, %s, %s, %s, %s)",
                    rows,
                )
        print(f"seeded {args.customers} customers in {time.perf_counter() - t0:.1f}s")

        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(BIN / "msgworker"), "pii", "rotate", "--batch-size", str(args.batch_size)],
            env={**env, "PII_KEYS": f"{NEW},{OLD}"},
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"rotate failed:\n{proc.stdout}\n{proc.stderr}")
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            left = conn.execute(
                "SELECT count(*) FROM core.customers WHERE split_part(phone_encrypted, '.', 2) <> 'new1' "
                "OR split_part(email_encrypted, '.', 2) <> 'new1' OR split_part(address_encrypted, '.', 2) <> 'new1'"
            ).fetchone()[0]  # type: ignore[index]
        assert left == 0, f"{left} customers not rotated"
        print(
            f"rotated {args.customers} customers ({3 * args.customers} values) in {elapsed:.1f}s "
            f"(process start included): {args.customers / elapsed:.0f} customers/s"
        )
    finally:
        from worker.db import reset_engine

        reset_engine()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
