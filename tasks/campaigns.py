"""Campaign ticks: enrol completed bookings, plan due runs, fan out in chunks, complete, upkeep.

Each step runs in transactions opened here (the services take a session and never commit),
one per chunk, so a crash loses at most the chunk in flight, which then simply was not done.
Every step claims its work with ``FOR UPDATE SKIP LOCKED`` and is keyed by unique constraints,
so two beat processes, overlapping ticks and a re-run tick share the work and never repeat it
(worker/campaigns/fanout.py). A tick stops taking chunks after CAMPAIGN_TICK_BUDGET_SECONDS;
the next tick, five seconds later, goes on where it stopped.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from worker.app import app
from worker.campaigns import coupons, fanout, recipients, reviews
from worker.db import session_scope
from worker.settings import get_settings


def _now() -> datetime:
    return datetime.now(UTC)


@app.task(name="tasks.campaigns.tick")
def tick() -> dict[str, int]:
    settings = get_settings()
    chunk, deadline = settings.CAMPAIGN_FANOUT_CHUNK, time.monotonic() + settings.CAMPAIGN_TICK_BUDGET_SECONDS
    report = {"enrolled": 0, "cancelled": 0, "runs": 0, "expanded": 0, "materialised": 0, "completed": 0}
    with session_scope() as session:
        report["enrolled"] = reviews.enrol_completed(session, _now())
    with session_scope() as session:
        report["cancelled"] = reviews.cancel_for_cancelled_bookings(session) + recipients.cancel_opted_out(session)
    with session_scope() as session:
        report["runs"] = fanout.plan_due_runs(session, _now())
    while time.monotonic() < deadline:
        with session_scope() as session:
            expanded = fanout.expand_chunk(session, _now(), chunk=chunk)
        if not expanded:
            break
        report["expanded"] += expanded
    while time.monotonic() < deadline:
        with session_scope() as session:
            done = fanout.materialise_chunk(session, _now(), chunk=chunk).total
        if not done:
            break
        report["materialised"] += done
    with session_scope() as session:
        report["completed"] = len(recipients.complete_finished(session))
    return report


@app.task(name="tasks.campaigns.coupon_upkeep")
def coupon_upkeep() -> dict[str, int]:
    """Issued codes past their expiry become expired; pools below their threshold warn once."""
    with session_scope() as session:
        expired = coupons.expire_issued(session)
        low = coupons.check_stock(session)
    return {"expired": expired, "low_stock": len(low)}
