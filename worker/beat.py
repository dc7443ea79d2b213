"""The beat schedule: small, frequent ticks. Campaign and deferred-send schedules live in
the database, so nothing here changes when a marketer schedules something.

Each tick is idempotent and claims work with FOR UPDATE SKIP LOCKED, so a second beat
instance does no harm. ``expires`` drops a tick that waited longer than its period.
"""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Drains inbox rows stored but not processed (lost task, broker restart, worker down)
    # and fails rows out of attempts; see tasks/ingest.py.
    "sweep-inbox": {"task": "tasks.ingest.sweep_inbox", "schedule": 15.0, "options": {"expires": 15}},
    # Review items past their 10-business-day deadline become opt-outs; near ones are
    # logged as warnings (worker/consent/review.py).
    "expire-reviews": {"task": "tasks.consent.expire_reviews", "schedule": 300.0, "options": {"expires": 300}},
    # Due outbox rows (new, deferred, retrying) -> send tasks; stale "queued" rows re-published.
    "release-outbox": {"task": "tasks.send.release_due", "schedule": 1.0, "options": {"expires": 2}},
    # "unknown" and long-"sending" rows looked up at Twilio (worker/outbound/reconcile.py).
    "reconcile-outbox": {"task": "tasks.send.reconcile", "schedule": 10.0, "options": {"expires": 10}},
}
