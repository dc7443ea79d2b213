"""Settling sends whose outcome we did not hear: look the message up at Twilio, never resend blindly.

Two kinds of rows need it:

- "unknown": the request may have reached Twilio (read timeout, reset connection, 504).
- "sending" for longer than OUTBOUND_SENDING_STALE_SECONDS: the worker died between
  committing its decision and recording Twilio's answer (SIGKILL, OOM, host loss).

Twilio has no idempotency key for message creation, so the only evidence is Twilio's own
message list. For each row we list messages to the recipient (and from the sender, unless
it sends through a Messaging Service, which picks the From) created since the attempt began
(minus a minute of clock slack), and match the exact body. Sids already stored on another
outbox row are excluded, so two identical texts to one number are told apart by order.

- Found: the row is "sent" with that sid (status callbacks then move it on). The attempt
  becomes "reconciled_found".
- Not found, and the attempt began at least OUTBOUND_RECONCILE_ABSENT_SECONDS ago: the row
  goes back to "pending" and the attempt becomes "reconciled_absent"; the next send decides
  again under the gate. Why the list is authoritative after that delay: a create is
  synchronous; once Twilio answers 201 the message resource exists and is listed (a queued
  message has no date_sent, which is why worker.provider.client.find_messages filters on
  date_created, not DateSent). A request still unanswered after our HTTP timeout (10 s by
  default) plus this delay (120 s) was never processed. The send path refuses to call
  Twilio with a decision older than half the staleness threshold, so a paused worker cannot
  create the message after we looked.
- Not found yet: left alone until the delay has passed.
- The lookup failed (Twilio unreachable): left alone, logged; the next tick tries again.

The Twilio call happens outside any transaction; the row is then re-locked and updated
only if it is still in the state we looked at, so two reconcilers (or a late worker) cannot
both settle one row. The pass itself (one transaction to pick the rows, the lookups, one
transaction per row settled) is driven by ``reconcile_due`` in worker/outbound/send.py, the
send flow's orchestrator; the functions here run in the transaction they are given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from twilio.rest import Client

from worker import metrics, pii
from worker.models import OutboundMessage
from worker.models.outbox import OutboxStatus
from worker.outbound.delivery import apply_pending_events, lock_sid
from worker.provider.client import FoundMessage, find_messages
from worker.settings import Settings

__all__ = ["Candidate", "ReconcileReport", "due_candidates", "look_up", "settle"]

log = structlog.get_logger(__name__)

_CLOCK_SLACK = timedelta(seconds=60)

_CANDIDATES = text(
    """
    SELECT o.id, o.status, o.to_encrypted, o.body, s.address AS sender_address, s.messaging_service_sid,
           a.id AS attempt_id, a.started_at
    FROM core.outbound_messages o
    JOIN LATERAL (
      SELECT id, started_at FROM core.send_attempts
      WHERE outbound_id = o.id AND (outcome IS NULL OR outcome = 'timeout')
      ORDER BY started_at DESC LIMIT 1) a ON true
    LEFT JOIN identity.station_senders s ON s.id = o.sender_id
    WHERE o.status = 'unknown'
       OR (o.status = 'sending' AND o.decided_at < now() - make_interval(secs => :stale))
    ORDER BY o.decided_at
    LIMIT :limit
    """
)


@dataclass(frozen=True, slots=True)
class Candidate:
    id: uuid.UUID
    status: str
    to_encrypted: str
    body: str
    sender_address: str | None
    messaging_service_sid: str | None
    attempt_id: uuid.UUID
    started_at: datetime


@dataclass
class ReconcileReport:
    found: list[uuid.UUID] = field(default_factory=list)
    requeued: list[uuid.UUID] = field(default_factory=list)
    waiting: list[uuid.UUID] = field(default_factory=list)
    lookup_failed: list[uuid.UUID] = field(default_factory=list)
    # A row in "unknown" with no open attempt (should not happen): back to pending, decided again.
    orphaned: list[uuid.UUID] = field(default_factory=list)


def _pick(found: list[FoundMessage], body: str, claimed: set[str]) -> FoundMessage | None:
    matches = [m for m in found if m.body == body and m.sid not in claimed]
    matches.sort(key=lambda m: (m.date_created or datetime.min.replace(tzinfo=UTC), m.sid))
    return matches[0] if matches else None


def due_candidates(session: Session, s: Settings, *, limit: int, report: ReconcileReport) -> list[Candidate]:
    """Rows to settle (unknown, or sending past the staleness threshold), oldest decision first.

    An "unknown" row with no open attempt (should not happen) goes straight back to pending,
    recorded in ``report.orphaned``.
    """
    rows = [
        Candidate(**r._asdict())
        for r in session.execute(_CANDIDATES, {"stale": s.OUTBOUND_SENDING_STALE_SECONDS, "limit": limit})
    ]
    orphans = session.execute(
        text(
            "UPDATE core.outbound_messages o SET status = 'pending', updated_at = now() "
            "WHERE o.status = 'unknown' AND NOT EXISTS (SELECT 1 FROM core.send_attempts a "
            "WHERE a.outbound_id = o.id AND (a.outcome IS NULL OR a.outcome IN ('timeout', 'accepted'))) "
            "RETURNING o.id"
        )
    ).scalars()
    report.orphaned.extend(orphans)
    return rows


def look_up(client: Client, row: Candidate, report: ReconcileReport) -> list[FoundMessage] | None:
    """Twilio's messages that could be this row's (no transaction open); None if the lookup failed."""
    to = pii.decrypt(row.to_encrypted, kind="phone")
    since = row.started_at - _CLOCK_SLACK
    try:
        return find_messages(
            client,
            to=to,
            from_=None if row.messaging_service_sid else row.sender_address,
            date_sent_after=since,
        )
    except Exception as exc:  # noqa: BLE001 - any lookup failure: try again next tick
        log.warning("reconcile_lookup_failed", message_id=str(row.id), error=type(exc).__name__)
        report.lookup_failed.append(row.id)
        return None


def settle(session: Session, row: Candidate, found: list[FoundMessage], s: Settings, report: ReconcileReport) -> None:
    """Settle one row from what Twilio listed, if it is still as we saw it (see the module docstring)."""
    rid, attempt_id, started_at, status, body = row.id, row.attempt_id, row.started_at, row.status, row.body
    sids = [m.sid for m in found]
    claimed: set[str] = set()
    if sids:
        claimed = {
            sid
            for sid in session.execute(
                select(OutboundMessage.provider_sid).where(
                    OutboundMessage.provider_sid.in_(sids), OutboundMessage.id != rid
                )
            ).scalars()
            if sid
        }
    match = _pick(found, body, claimed)
    if match is not None:
        lock_sid(session, match.sid)
    msg = session.execute(
        select(OutboundMessage).where(OutboundMessage.id == rid).with_for_update()
    ).scalar_one()
    still_open = session.execute(
        text("SELECT outcome IS NULL OR outcome = 'timeout' FROM core.send_attempts WHERE id = :id"),
        {"id": attempt_id},
    ).scalar_one()
    if msg.status != status or not still_open:
        return  # someone settled it while we looked
    if match is not None:
        session.execute(
            text(
                "UPDATE core.send_attempts SET outcome = 'reconciled_found', provider_sid = :sid, "
                "finished_at = coalesce(finished_at, clock_timestamp()) WHERE id = :id"
            ),
            {"sid": match.sid, "id": attempt_id},
        )
        msg.provider_sid = match.sid
        msg.status = OutboxStatus.SENT
        msg.sent_at = match.date_created or datetime.now(UTC)
        msg.delivery_status = msg.delivery_status or match.status
        apply_pending_events(session, msg)
        log.info("reconcile_found", message_id=str(rid), provider_sid=match.sid)
        report.found.append(rid)
        metrics.reconciled(session, "found")
        return
    age = datetime.now(UTC) - started_at
    if age < timedelta(seconds=s.OUTBOUND_RECONCILE_ABSENT_SECONDS):
        report.waiting.append(rid)
        return
    session.execute(
        text(
            "UPDATE core.send_attempts SET outcome = 'reconciled_absent', "
            "finished_at = coalesce(finished_at, clock_timestamp()) WHERE id = :id"
        ),
        {"id": attempt_id},
    )
    msg.status = OutboxStatus.PENDING
    msg.not_before = datetime.now(UTC)
    log.warning("reconcile_absent_requeued", message_id=str(rid), age_seconds=int(age.total_seconds()))
    report.requeued.append(rid)
    metrics.reconciled(session, "absent")
