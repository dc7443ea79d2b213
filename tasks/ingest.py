"""Ingest tasks: drain the webhook inbox, and the beat sweeper that makes sure it drains.

Delivery semantics: both tasks are idempotent (only pending rows are applied, under a row
lock, and every write is keyed by a unique constraint), so a redelivered task does no
harm. Neither retries on its own: a row that failed transiently stays pending and the
sweeper, every ~15 s, drains again. A task lost with the broker loses nothing, because the
rows are in Postgres.
"""

from __future__ import annotations

from typing import Any

import structlog

from worker.app import app
from worker.ingest import service

log = structlog.get_logger(__name__)


@app.task(name="tasks.ingest.drain_inbox")
def drain_inbox() -> dict[str, Any]:
    """Process every pending inbox row (published by the receiver's coalesced kick)."""
    return service.drain_now()


@app.task(name="tasks.ingest.sweep_inbox")
def sweep_inbox() -> dict[str, Any]:
    """Beat tick: fail rows out of attempts, drain rows left pending past the grace period."""
    return service.sweep_now()
