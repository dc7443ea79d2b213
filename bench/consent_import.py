"""`msgworker consent import` throughput: an N-row opt-out CSV with 1% bad rows, then a re-run.

    .venv/bin/python bench/consent_import.py --rows 100000

Runs the real command as its own process against a scratch database built by the
migrations (dropped afterwards). A third of the numbers are written loosely ("(415) ...")
so they take the full phonenumbers parse; half carry an occurred_at.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
VENV_BIN = Path(sys.executable).parent


def write_csv(path: Path, rows: int) -> int:
    bad = 0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "occurred_at", "note"])
        for i in range(rows):
            if i % 100 == 99:
                w.writerow(["not a number", "", "bad"])
                bad += 1
                continue
            digits = f"{2_000_000 + i:07d}"
            spelled = f"(415) {digits[:3]}-{digits[3:]}" if i % 3 == 0 else f"+1415{digits}"
            w.writerow([spelled, "2025-06-01T12:00:00Z" if i % 2 else "", f"row {i}"])
    return bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    name = f"msgworker_bench_import_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", "APP_ENV": "test"}
    try:
        subprocess.run([str(VENV_BIN / "msgworker"), "db", "upgrade"], env=env, check=True, capture_output=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "optouts.csv"
            bad = write_csv(path, args.rows)
            for label in ("first run", "re-run"):
                started = time.perf_counter()
                out = subprocess.run(
                    [str(VENV_BIN / "msgworker"), "consent", "import", str(path), "--by", "bench",
                     "--batch-size", str(args.batch_size)],
                    env=env, check=True, capture_output=True, text=True,
                )
                elapsed = time.perf_counter() - started
                summary = next(line for line in out.stdout.splitlines() if line.startswith("rows:"))
                print(f"{label}: {elapsed:.1f}s ({args.rows / elapsed:,.0f} rows/s) {summary}")
        print(f"{bad} bad rows in the file")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
