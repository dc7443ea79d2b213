"""The release tick: due outbox rows -> send tasks. Future sends wait in Postgres, not in Redis.

Celery's Redis transport redelivers a long ETA after the visibility timeout and is "not a
database" (Celery's caveats on the Redis broker), so a deferred or scheduled text is a row
with a not-before time. Each tick (beat, every second) claims due rows with ``FOR UPDATE SKIP
LOCKED`` (two beats or a manual run do no harm), marks them "queued" and publishes send tasks
after the commit, a few ids per task so one task's overhead is shared.

With rate limiting on, a tick releases at most about two seconds' worth of segments per
sender (``rate_per_second`` is segments/s, the unit of Twilio's MPS and of the token bucket,
worker/outbound/rate_limit.py; each row's ``segments`` was counted at enqueue), so a campaign backlog
does not bounce off the token bucket over and over; compliance rows (opt-out confirmations
are due within five minutes) go first. A sender's first row in line always goes, so a text
longer than two seconds' worth is paced by the bucket, never starved here.

The tick also re-publishes "queued" rows whose task never ran (a lost broker message, a
worker killed before it acknowledged): the send task is idempotent per row, so a second
task for the same row finds it claimed or settled and stops.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from worker.after_commit import BULK_PRIORITY, publish_after_commit
from worker.models.outbox import OutboxStatus
from worker.outbox import SEND_TASK
from worker.settings import Settings, get_settings

__all__ = ["ReleaseReport", "release_due", "requeue_stale_queued"]

log = structlog.get_logger(__name__)


_WAITING = OutboxStatus.WAITING.sql

_RELEASE_UNLIMITED = text(
    f"""
    WITH due AS (
      SELECT id FROM core.outbound_messages
      WHERE status IN {_WAITING} AND not_before <= now()
      ORDER BY not_before
      LIMIT :limit
      FOR UPDATE SKIP LOCKED)
    UPDATE core.outbound_messages o SET status = 'queued', updated_at = now()
    FROM due WHERE o.id = due.id
    RETURNING o.id
    """  # noqa: S608 - constant SQL
)

# Per sender, rows in line while their running total of segments stays within
# ceil(rate * :window) (the first row always); compliance rows first. The candidate scan is
# bounded so a huge backlog costs one bounded index scan per tick.
_RELEASE_PACED = text(
    f"""
    WITH cand AS (
      SELECT o.id, o.sender_id, o.purpose, o.not_before, o.segments FROM core.outbound_messages o
      WHERE o.status IN {_WAITING} AND o.not_before <= now()
      ORDER BY o.not_before
      LIMIT :scan),
    ranked AS (
      SELECT c.id, c.segments, sum(c.segments) OVER (
               PARTITION BY c.sender_id ORDER BY (c.purpose = 'compliance') DESC, c.not_before, c.id
               ROWS UNBOUNDED PRECEDING) AS used,
             greatest(1, ceil(coalesce(s.rate_per_second, 1) * :window)) AS cap
      FROM cand c LEFT JOIN identity.station_senders s ON s.id = c.sender_id),
    due AS (
      SELECT o.id FROM core.outbound_messages o JOIN ranked r ON r.id = o.id
      WHERE (r.used <= r.cap OR r.used = r.segments) AND o.status IN {_WAITING} AND o.not_before <= now()
      LIMIT :limit
      FOR UPDATE OF o SKIP LOCKED)
    UPDATE core.outbound_messages o SET status = 'queued', updated_at = now()
    FROM due WHERE o.id = due.id
    RETURNING o.id
    """  # noqa: S608 - constant SQL
)

_STALE_QUEUED = text(
    """
    WITH stale AS (
      SELECT id FROM core.outbound_messages
      WHERE status = 'queued' AND updated_at < now() - make_interval(secs => :age)
      ORDER BY updated_at
      LIMIT :limit
      FOR UPDATE SKIP LOCKED)
    UPDATE core.outbound_messages o SET updated_at = now()
    FROM stale WHERE o.id = stale.id
    RETURNING o.id
    """
)


@dataclass(frozen=True, slots=True)
class ReleaseReport:
    released: int
    republished: int


def _publish(session: Session, ids: list[uuid.UUID], chunk: int) -> None:
    for i in range(0, len(ids), chunk):
        publish_after_commit(
            session, SEND_TASK, priority=BULK_PRIORITY, message_ids=[str(x) for x in ids[i : i + chunk]]
        )


def release_due(session: Session, *, settings: Settings | None = None, limit: int | None = None) -> list[uuid.UUID]:
    """Mark due rows "queued" and publish their send tasks after commit; returns their ids."""
    s = settings or get_settings()
    limit = limit or s.OUTBOUND_RELEASE_BATCH
    if s.OUTBOUND_RATE_LIMIT_ENABLED:
        ids = list(
            session.execute(_RELEASE_PACED, {"limit": limit, "scan": limit * 20, "window": 2.0}).scalars()
        )
    else:
        ids = list(session.execute(_RELEASE_UNLIMITED, {"limit": limit}).scalars())
    _publish(session, ids, s.OUTBOUND_SEND_CHUNK)
    if ids:
        log.info("outbox_released", count=len(ids))
    return ids


def requeue_stale_queued(session: Session, *, settings: Settings | None = None, limit: int = 1000) -> list[uuid.UUID]:
    """Re-publish send tasks for rows left "queued" longer than OUTBOUND_QUEUED_STALE_SECONDS."""
    s = settings or get_settings()
    ids = list(session.execute(_STALE_QUEUED, {"age": s.OUTBOUND_QUEUED_STALE_SECONDS, "limit": limit}).scalars())
    _publish(session, ids, s.OUTBOUND_SEND_CHUNK)
    if ids:
        log.warning("outbox_queued_republished", count=len(ids))
    return ids
