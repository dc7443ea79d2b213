"""Step 3 of sending (see worker/outbound/send.py): record what Twilio answered.

Every function here runs in the caller's transaction (the send orchestrator,
worker/outbound/send.py, opens one per step) and never commits.

Accepted sends of a batch are recorded in one transaction: the sids' advisory locks first
(``LockNamespace.DELIVERY_SID``, ascending: the order status-callback ingest uses, sid then
row, so the two cannot deadlock), then the attempts and rows, then any status callbacks that
arrived before the sid was stored (worker.outbound.delivery.apply_pending_events).

Errors are recorded one row at a time (compliance/twilio_errors.py decides the action):
21610 -> blocked plus a carrier opt-out in the ledger, in the same transaction (the number's
lock is taken first, as everywhere); invalid numbers -> failed plus undeliverable; 429,
500/502/503 and connections that never reached Twilio -> back to pending with a backoff,
up to OUTBOUND_MAX_ATTEMPTS; a read timeout, a reset connection or a 504 -> "unknown",
which only the reconciler settles.

A row is only changed if it is still "sending" (the reconciler may have settled a row whose
worker looked dead); the attempt row always records what happened.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from compliance.twilio_errors import Category, classify
from worker import metrics
from worker.consent.ledger import record_carrier_opt_out
from worker.locks import LockNamespace, lock_number, text_key
from worker.models import OutboundMessage
from worker.models.outbox import OutboxStatus
from worker.outbound.decide import Prepared, SendResult
from worker.outbound.delivery import apply_pending_events, on_delivery_error
from worker.provider.client import SentMessage, request_never_reached_twilio
from worker.settings import Settings

__all__ = ["abandon", "record_accepted", "record_error", "record_transport_error"]

log = structlog.get_logger(__name__)

_LOCK_SIDS = text(
    "SELECT count(pg_advisory_xact_lock(:ns, k)) FROM "
    "(SELECT unnest(CAST(:keys AS int[])) AS k ORDER BY 1) AS ordered"
)
_ACCEPT_ATTEMPTS = text(
    """
    UPDATE core.send_attempts a SET outcome = 'accepted', provider_sid = u.sid, http_status = 201,
      finished_at = clock_timestamp()
    FROM unnest(CAST(:attempt_ids AS uuid[]), CAST(:sids AS text[])) AS u(id, sid) WHERE a.id = u.id
    """
)
_ACCEPT_ROWS = text(
    """
    UPDATE core.outbound_messages o SET provider_sid = u.sid, status = 'sent', sent_at = clock_timestamp(),
      delivery_status = u.delivery_status, updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:sids AS text[]), CAST(:statuses AS text[])) AS u(id, sid, delivery_status)
    WHERE o.id = u.id AND o.status = 'sending'
    RETURNING o.id, (SELECT extract(epoch FROM o.sent_at - e.recorded_at) FROM compliance.consent_events e
                     WHERE o.purpose = 'compliance' AND e.id = o.in_reply_to_event_id AND e.kind = 'opt_out')
    """
)
_ORPHAN_EVENTS = text(
    "SELECT DISTINCT provider_sid FROM core.delivery_events WHERE provider_sid = ANY(CAST(:sids AS text[])) "
    "AND outbound_id IS NULL"
)


def record_accepted(session: Session, accepted: Sequence[tuple[Prepared, SentMessage]]) -> list[SendResult]:
    """Store the sids of accepted sends (the batch's one transaction is the caller's)."""
    if not accepted:
        return []
    sids = [sent.sid for _, sent in accepted]
    session.execute(_LOCK_SIDS, {"ns": int(LockNamespace.DELIVERY_SID), "keys": sorted({text_key(s) for s in sids})})
    session.execute(_ACCEPT_ATTEMPTS, {"attempt_ids": [p.attempt_id for p, _ in accepted], "sids": sids})
    # Each updated row, with the seconds from its opt-out to now when it confirms one.
    result = session.execute(
        _ACCEPT_ROWS,
        {
            "ids": [p.message_id for p, _ in accepted],
            "sids": sids,
            "statuses": [sent.status for _, sent in accepted],
        },
    )
    updated: dict[uuid.UUID, Any] = {row[0]: row[1] for row in result}
    metrics.sends_accepted(session, [float(s) for s in updated.values() if s is not None])
    # Callbacks that beat us here were stored without an outbound row: attach them now.
    for sid in session.execute(_ORPHAN_EVENTS, {"sids": sids}).scalars():
        msg = session.execute(
            select(OutboundMessage).where(OutboundMessage.provider_sid == sid).with_for_update()
        ).scalar_one_or_none()
        if msg is not None:
            apply_pending_events(session, msg)
    results: list[SendResult] = []
    for prep, sent in accepted:
        if prep.message_id in updated:
            log.info("send_accepted", message_id=str(prep.message_id), provider_sid=sent.sid)
            results.append(SendResult(prep.message_id, "sent", None, sent.sid))
        else:
            log.warning("send_row_changed_meanwhile", message_id=str(prep.message_id), provider_sid=sent.sid)
            results.append(SendResult(prep.message_id, "skipped", "row_changed", sent.sid))
    return results


def _backoff(attempts: int, *, queue_full: bool) -> timedelta:
    base = 60.0 if queue_full else 2.0
    seconds = min(base * 2 ** max(attempts - 1, 0), 900.0)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def _finish_attempt(
    session: Session,
    prep: Prepared,
    *,
    outcome: str,
    http_status: int | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
) -> None:
    session.execute(
        text(
            "UPDATE core.send_attempts SET outcome = :outcome, finished_at = clock_timestamp(), "
            "http_status = :http_status, error_code = :error_code, error_message = :error_message WHERE id = :id"
        ),
        {
            "id": prep.attempt_id,
            "outcome": outcome,
            "http_status": http_status,
            "error_code": error_code,
            "error_message": (error_message or "")[:500] or None,
        },
    )


def _lock_sending_row(session: Session, prep: Prepared) -> OutboundMessage | None:
    """The row, if it is still "sending" (the reconciler may have settled it meanwhile)."""
    msg = session.execute(
        select(OutboundMessage).where(OutboundMessage.id == prep.message_id).with_for_update()
    ).scalar_one()
    if msg.status != "sending":
        log.warning("send_row_changed_meanwhile", message_id=str(prep.message_id), status=msg.status)
        return None
    return msg


def _retry_later(msg: OutboundMessage, prep: Prepared, settings: Settings, *, queue_full: bool = False) -> None:
    if prep.attempts >= settings.OUTBOUND_MAX_ATTEMPTS:
        msg.status, msg.gate_reason = OutboxStatus.FAILED, "retries_exhausted"
        return
    msg.status = OutboxStatus.PENDING
    msg.not_before = datetime.now(UTC) + _backoff(prep.attempts, queue_full=queue_full)


def record_error(session: Session, prep: Prepared, exc: TwilioRestException, settings: Settings) -> SendResult:
    code = int(exc.code) if exc.code is not None else None
    info = classify(code, exc.status)
    if info.category is Category.OPT_OUT:
        lock_number(session, prep.to_index)  # the ledger write below needs it; number before row
    msg = _lock_sending_row(session, prep)
    outcome = "retryable" if info.category in (Category.RETRYABLE, Category.QUEUE_FULL) else "refused"
    if info.category is Category.OUTCOME_UNKNOWN:
        outcome = "timeout"
    _finish_attempt(
        session, prep, outcome=outcome, http_status=exc.status, error_code=code, error_message=str(exc.msg)
    )
    metrics.twilio_error(session, code or exc.status)
    if msg is None:
        return SendResult(prep.message_id, "skipped", "row_changed", error_code=code)
    msg.error_code = code
    if info.category is Category.OPT_OUT:
        msg.status, msg.gate_reason = OutboxStatus.BLOCKED, "carrier_opt_out"
        record_carrier_opt_out(
            session,
            phone_e164=prep.to,
            station_id=prep.station_id,
            error_code=code or 21610,
            provider_ref=f"outbound:{prep.message_id}",
            reported_via="send_response",
            occurred_at=datetime.now(UTC),
        )
    elif info.category in (Category.INVALID_RECIPIENT, Category.PERMANENT, Category.UNDELIVERABLE_NUMBER):
        msg.status, msg.gate_reason = OutboxStatus.FAILED, info.category.value
        if info.marks_number and code is not None:
            on_delivery_error(session, msg, code)
    elif info.category is Category.OUTCOME_UNKNOWN:
        msg.status = OutboxStatus.UNKNOWN
    else:
        _retry_later(msg, prep, settings, queue_full=info.category is Category.QUEUE_FULL)
    log.info(
        "send_error", message_id=str(prep.message_id), error_code=code, http_status=exc.status, status=msg.status
    )
    return SendResult(prep.message_id, msg.status, msg.gate_reason, error_code=code)


def record_transport_error(session: Session, prep: Prepared, exc: BaseException, settings: Settings) -> SendResult:
    never_reached = request_never_reached_twilio(exc)
    msg = _lock_sending_row(session, prep)
    _finish_attempt(
        session,
        prep,
        outcome="retryable" if never_reached else "timeout",
        error_message=f"{type(exc).__name__}: {str(exc)[:300]}",
    )
    metrics.twilio_error(session, None)
    if msg is None:
        return SendResult(prep.message_id, "skipped", "row_changed")
    if never_reached:
        _retry_later(msg, prep, settings)
    else:
        msg.status = OutboxStatus.UNKNOWN
    log.warning(
        "send_transport_error",
        message_id=str(prep.message_id),
        error=type(exc).__name__,
        never_reached=never_reached,
        status=msg.status,
    )
    return SendResult(prep.message_id, msg.status, msg.gate_reason)


def abandon(session: Session, prep: Prepared, why: str) -> SendResult:
    """The Twilio call was not made: the attempt is closed and the row goes back to the outbox."""
    msg = _lock_sending_row(session, prep)
    _finish_attempt(session, prep, outcome="abandoned", error_message=why)
    if msg is None:
        return SendResult(prep.message_id, "skipped", "row_changed")
    msg.status = OutboxStatus.PENDING
    log.warning("send_abandoned_before_call", message_id=str(prep.message_id), why=why)
    return SendResult(prep.message_id, "pending", why)
