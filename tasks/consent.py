"""Consent ticks: review items past their 10-business-day deadline become opt-outs."""

from __future__ import annotations

from worker.app import app
from worker.consent.review import run_deadline_tick
from worker.tasks_base import DbTask


# Idempotent: each item is converted in its own transaction under its number lock and
# only while still open, so a redelivered or overlapping tick changes nothing twice.
# transactional=False: one transaction per item, so one bad item cannot block the rest.
@app.task(base=DbTask, bind=True, name="tasks.consent.expire_reviews", transactional=False)
def expire_reviews(self: DbTask) -> dict[str, int]:
    result = run_deadline_tick()
    return {"expired": len(result.expired), "failed": len(result.failed), "near": len(result.near)}
