"""A text a person queues by hand (``msgworker send``): the outbox row and its audit row, together.

Staff sends take the ordinary way in (worker.outbox.enqueue: the gate still decides at send
time), plus one public.audit_logs row (CREATE outbound_message) in the same transaction, so
the log says who asked for every text that was not the system's own. A repeat with the same
idempotency key finds the existing row and changes nothing, so it is not audited again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.models import AuditAction, Station
from worker.outbox import EnqueueResult, enqueue

__all__ = ["queue_staff_text"]


def queue_staff_text(
    session: Session,
    *,
    actor: Actor,
    station: Station | uuid.UUID,
    to: str,
    body: str,
    purpose: str,
    idempotency_key: str | None = None,
    not_before: datetime | None = None,
) -> EnqueueResult:
    """Queue ``body`` to ``to`` from ``station`` on ``actor``'s word (see the module docstring).

    ``station`` may be just its id (the admin API): the insert names it, and nothing reads it first.
    """
    station_id = station if isinstance(station, uuid.UUID) else station.id
    result = enqueue(
        session,
        station_id=station_id,
        to=to,
        body=body,
        purpose=purpose,
        idempotency_key=idempotency_key or f"{actor.via}:{uuid.uuid4()}",
        not_before=not_before,
        created_by=actor.label,
    )
    if result.created:
        msg = result.message
        audit.record(
            session,
            actor,
            action=AuditAction.CREATE,
            resource_type="outbound_message",
            resource_id=msg.id,
            station_id=station_id,
            new_values={
                "purpose": msg.purpose,
                "idempotency_key": msg.idempotency_key,
                "not_before": msg.not_before.isoformat() if msg.not_before else None,
                "segments": msg.segments,
            },
        )
    return result
