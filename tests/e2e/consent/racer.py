"""One side of the consent race (tests/e2e/consent/test_race.py), run as its own process.

    python -m tests.e2e.consent.racer KIND PHONE ROUNDS START_AT

Waits until START_AT (epoch seconds) so both processes begin together, then records
ROUNDS events of KIND for PHONE, each in its own transaction, as fast as it can.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from worker.consent.ledger import record_event
from worker.db import session_scope


def main() -> None:
    kind, phone, rounds, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    while time.time() < start_at:
        time.sleep(0.001)
    for n in range(rounds):
        with session_scope() as session:
            record_event(
                session,
                phone_e164=phone,
                kind=kind,
                purpose="all",
                source="sms_keyword",
                evidence={"round": n, "pid": os.getpid()},
                occurred_at=datetime.now(UTC),
                idempotency_key=f"race:{kind}:{os.getpid()}:{n}",
            )
    print(f"{kind}: {rounds} events recorded", flush=True)


if __name__ == "__main__":
    main()
