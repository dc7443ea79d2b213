"""Consent ticks: review items past their 10-business-day deadline become opt-outs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from worker.app import app
from worker.consent.review import NearDeadline, due_item_ids, expire_item, near_deadline
from worker.db import SessionScope, session_scope
from worker.tasks_base import DbTask

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TickResult:
    expired: list[uuid.UUID]
    failed: list[uuid.UUID]
    near: list[NearDeadline]


def run_deadline_tick(
    *, now: datetime | None = None, limit: int = 200, scope: SessionScope = session_scope
) -> TickResult:
    """Expire due items, one transaction each, then log the near ones.

    One item's failure (logged) does not stop the others; it is retried next tick. ``scope``
    opens each of those transactions (tests pass their rolled-back stand-in).
    """
    now = now or datetime.now(UTC)
    with scope() as session:
        due = due_item_ids(session, now=now, limit=limit)
    expired: list[uuid.UUID] = []
    failed: list[uuid.UUID] = []
    for item_id in due:
        try:
            with scope() as session:
                if expire_item(session, item_id, now=now) is not None:
                    expired.append(item_id)
        except Exception as exc:  # noqa: BLE001 - logged and retried next tick; others proceed
            failed.append(item_id)
            log.error(
                "review_expire_failed", review_item_id=str(item_id), error=type(exc).__name__, detail=str(exc)[:200]
            )
    with scope() as session:
        near = near_deadline(session, now=now)
    return TickResult(expired=expired, failed=failed, near=near)


# Idempotent: each item is converted in its own transaction under its number lock and
# only while still open, so a redelivered or overlapping tick changes nothing twice.
# transactional=False: one transaction per item, so one bad item cannot block the rest.
@app.task(base=DbTask, bind=True, name="tasks.consent.expire_reviews", transactional=False)
def expire_reviews(self: DbTask) -> dict[str, int]:
    result = run_deadline_tick()
    return {"expired": len(result.expired), "failed": len(result.failed), "near": len(result.near)}
