"""Sending one outbox row: decide under the number's lock, commit, call Twilio, record.

Delivery semantics (STYLE.md item 4): a duplicate text is a compliance event, so nothing
here retries blindly. A row is sent in three transactions:

1. **Decide.** Lock the row (``FOR UPDATE SKIP LOCKED``: another worker has it -> stop),
   refuse if an earlier attempt may have reached Twilio (an attempt with no outcome, or
   "accepted"/"timeout"), take the per-number advisory lock *before* reading consent, read
   the facts (worker/gate_facts.py), evaluate the pure gate (compliance/gate.py). Write the
   decision, reason and basis; if allowed, take a token from the sender's bucket and insert
   a SendAttempt (task id, no outcome yet) and set status "sending". Commit.
2. **Call Twilio** (no transaction open), with the status callback URL and validity period,
   through the sender's Messaging Service when it has one.
3. **Record.** Store the sid (status "sent") and apply callbacks that beat us here
   (worker.delivery.apply_pending_events); or act on the error (compliance/twilio_errors.py):
   21610 -> blocked plus a carrier opt-out in the ledger, same transaction; invalid numbers
   -> failed plus undeliverable; 429/500/502/503 and connections that never reached Twilio
   -> back to pending with backoff; a read timeout or 504 -> "unknown", which only the
   reconciler (worker/reconcile.py) settles by looking the message up at Twilio.

Why the opt-out race is safe: consent recording (worker.consent.ledger) and step 1 take the
same ``lock_number`` before reading or writing the number's consent, and hold it to commit.
So either the decision commits first (the text was decided before the opt-out existed,
which is lawful) or the opt-out commits first and the decision, which reads consent only
after getting the lock, sees it and blocks. The decision's UPDATE is the transaction's last
statement and stores ``pg_current_snapshot()`` in gate_basis: the set of transactions it
could see, which tests (tests/e2e/test_send_race.py) and auditors can check against the
opt-out event's transaction.

A crash between 1 and 3 leaves the row "sending" with an attempt with no outcome; the
reconciler treats such rows, once stale, like "unknown". A worker paused for longer than
that between 1 and 2 would race the reconciler, so step 2 refuses to call Twilio when the
decision is older than half the staleness threshold.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from compliance.gate import Outcome, SendDecision, evaluate_send
from compliance.twilio_errors import Category, classify
from worker.consent.ledger import record_carrier_opt_out
from worker.db import session_scope
from worker.delivery import apply_pending_events, lock_sid, on_delivery_error
from worker.gate_facts import FactsRequest, gate_policy, load_facts
from worker.locks import lock_number
from worker.models import OutboundMessage, SendAttempt
from worker.rate_limit import bucket
from worker.settings import Settings, get_settings
from worker.twilio_client import SentMessage, make_client, request_never_reached_twilio, send_sms

__all__ = ["STATUS_CALLBACK_PATH", "SendResult", "decide", "send_one"]

log = structlog.get_logger(__name__)

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"

_SENDABLE = "(o.status = 'queued' OR (o.status IN ('pending', 'deferred') AND o.not_before <= now()))"
_PEEK = text(f"SELECT o.to_index FROM core.outbound_messages o WHERE o.id = :id AND {_SENDABLE}")  # noqa: S608

_CLAIM = text(
    """
    SELECT o.id, o.station_id, o.to_index, o.to_encrypted, o.body, o.purpose, o.campaign_id,
           o.in_reply_to_event_id, o.attempts, o.channel, o.sender_id,
           s.address AS sender_address, s.messaging_service_sid, s.rate_per_second, s.is_active AS sender_active,
           EXISTS (SELECT 1 FROM core.send_attempts a WHERE a.outbound_id = o.id
                   AND (a.outcome IS NULL OR a.outcome IN ('accepted', 'timeout'))) AS maybe_sent
    FROM core.outbound_messages o
    LEFT JOIN identity.station_senders s ON s.id = o.sender_id
    WHERE o.id = :id AND (o.status = 'queued' OR (o.status IN ('pending', 'deferred') AND o.not_before <= now()))
    FOR UPDATE OF o SKIP LOCKED
    """
)

# The decision is written by the transaction's last statement, so the snapshot stored with
# it shows which consent transactions it could see.
_WRITE_DECISION = text(
    """
    UPDATE core.outbound_messages
    SET status = :status, gate_decision = :decision, gate_reason = :reason,
        gate_basis = CAST(:basis AS jsonb) || jsonb_build_object('snapshot', pg_current_snapshot()::text),
        decided_at = clock_timestamp(), not_before = COALESCE(CAST(:not_before AS timestamptz), not_before),
        attempts = attempts + :attempt, updated_at = now()
    WHERE id = :id
    RETURNING decided_at
    """
)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one run did to one row; ``status`` is the row's status afterwards ("skipped": untouched)."""

    message_id: uuid.UUID
    status: str
    reason: str | None = None
    provider_sid: str | None = None
    error_code: int | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What step 2 needs, carried out of step 1's transaction."""

    message_id: uuid.UUID
    attempt_id: uuid.UUID
    station_id: uuid.UUID
    to_index: bytes
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    attempts: int
    decided_at: datetime


def _basis_json(decision: SendDecision, facts_summary: dict[str, Any]) -> str:
    return json.dumps({**decision.to_json(), **facts_summary}, default=str)


def decide(
    session: Session, message_id: uuid.UUID, *, task_id: str | None, now: datetime, settings: Settings
) -> tuple[SendResult | None, _Prepared | None]:
    """Step 1, in the caller's transaction. Returns (final result, None) or (None, what to send)."""
    # Lock order, shared with consent recording: the number first, then outbox rows. (The
    # opt-out path takes the number lock and then cancels this number's unsent rows; taking
    # the row first here would deadlock with it.)
    to_index = session.execute(_PEEK, {"id": message_id}).scalar_one_or_none()
    if to_index is None:
        return SendResult(message_id, "skipped", "not_sendable"), None
    lock_number(session, to_index)
    row = session.execute(_CLAIM, {"id": message_id}).one_or_none()
    if row is None:
        return SendResult(message_id, "skipped", "not_sendable_or_locked"), None
    if row.maybe_sent:
        # A previous run may have reached Twilio: only the reconciler may settle this row.
        session.execute(
            text("UPDATE core.outbound_messages SET status = 'unknown', updated_at = now() WHERE id = :id"),
            {"id": message_id},
        )
        log.warning("send_refused_prior_attempt", message_id=str(message_id))
        return SendResult(message_id, "unknown", "prior_attempt"), None
    if row.channel != "sms" or row.sender_id is None or not row.sender_active:
        reason = "channel_not_supported" if row.channel != "sms" else "no_active_sender"
        session.execute(
            text(
                "UPDATE core.outbound_messages SET status = 'failed', gate_reason = :reason, updated_at = now() "
                "WHERE id = :id"
            ),
            {"id": message_id, "reason": reason},
        )
        log.warning("send_failed_no_sender", message_id=str(message_id), reason=reason)
        return SendResult(message_id, "failed", reason), None

    facts, e164 = load_facts(
        session,
        FactsRequest(
            id=row.id,
            station_id=row.station_id,
            to_index=row.to_index,
            to_encrypted=row.to_encrypted,
            purpose=row.purpose,
            campaign_id=row.campaign_id,
            in_reply_to_event_id=row.in_reply_to_event_id,
        ),
        now=now,
    )
    decision = evaluate_send(facts, now, gate_policy(settings))
    summary: dict[str, Any] = {
        "now": now.isoformat(),
        "zones": list(facts.location.zones),
        "states": list(facts.location.states),
        "location": list(facts.location.sources),
        "marketing_sent_last_24h": facts.marketing_sent_last_24h,
    }
    params: dict[str, Any] = {
        "id": message_id,
        "decision": decision.outcome.value,
        "reason": decision.reason.value if decision.reason else None,
        "basis": _basis_json(decision, summary),
        "not_before": None,
        "attempt": 0,
    }
    if decision.outcome is Outcome.BLOCKED:
        session.execute(_WRITE_DECISION, {**params, "status": "blocked"})
        log.info("send_blocked", message_id=str(message_id), reason=params["reason"])
        return SendResult(message_id, "blocked", params["reason"]), None
    if decision.outcome is Outcome.DEFERRED:
        session.execute(_WRITE_DECISION, {**params, "status": "deferred", "not_before": decision.defer_until})
        log.info(
            "send_deferred",
            message_id=str(message_id),
            until=decision.defer_until.isoformat() if decision.defer_until else None,
        )
        return SendResult(message_id, "deferred", params["reason"]), None

    if settings.OUTBOUND_RATE_LIMIT_ENABLED:
        wait = bucket().take(str(row.sender_id), float(row.rate_per_second or 1.0))
        if wait > 0:
            # Back to the outbox: the release tick brings it back when a token is due.
            session.execute(
                _WRITE_DECISION,
                {**params, "status": "pending", "not_before": now + timedelta(seconds=wait)},
            )
            return SendResult(message_id, "pending", "rate_limited"), None

    attempt_id = uuid.uuid4()
    session.add(SendAttempt(id=attempt_id, outbound_id=message_id, task_id=task_id))
    session.flush()
    decided_at = session.execute(_WRITE_DECISION, {**params, "status": "sending", "attempt": 1}).scalar_one()
    log.info("send_allowed", message_id=str(message_id), attempt_id=str(attempt_id))
    return None, _Prepared(
        message_id=message_id,
        attempt_id=attempt_id,
        station_id=row.station_id,
        to_index=row.to_index,
        to=e164,
        body=row.body,
        from_=None if row.messaging_service_sid else row.sender_address,
        messaging_service_sid=row.messaging_service_sid,
        attempts=int(row.attempts) + 1,
        decided_at=decided_at,
    )


def _backoff(attempts: int, *, queue_full: bool) -> timedelta:
    base = 60.0 if queue_full else 2.0
    seconds = min(base * 2 ** max(attempts - 1, 0), 900.0)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def _finish_attempt(
    session: Session,
    prep: _Prepared,
    *,
    outcome: str,
    http_status: int | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
    provider_sid: str | None = None,
) -> None:
    session.execute(
        text(
            "UPDATE core.send_attempts SET outcome = :outcome, finished_at = clock_timestamp(), "
            "http_status = :http_status, error_code = :error_code, error_message = :error_message, "
            "provider_sid = :sid WHERE id = :id"
        ),
        {
            "id": prep.attempt_id,
            "outcome": outcome,
            "http_status": http_status,
            "error_code": error_code,
            "error_message": (error_message or "")[:500] or None,
            "sid": provider_sid,
        },
    )


def _lock_sending_row(session: Session, prep: _Prepared) -> OutboundMessage | None:
    """The row, if it is still "sending" on this attempt (the reconciler may have settled it)."""
    msg = session.execute(
        select(OutboundMessage).where(OutboundMessage.id == prep.message_id).with_for_update()
    ).scalar_one()
    if msg.status != "sending":
        log.warning("send_row_changed_meanwhile", message_id=str(prep.message_id), status=msg.status)
        return None
    return msg


def _record_accepted(prep: _Prepared, sent: SentMessage) -> SendResult:
    with session_scope() as session:
        lock_sid(session, sent.sid)  # lock order shared with status callbacks: sid, then row
        _finish_attempt(session, prep, outcome="accepted", http_status=201, provider_sid=sent.sid)
        msg = _lock_sending_row(session, prep)
        if msg is None:
            return SendResult(prep.message_id, "skipped", "row_changed", sent.sid)
        msg.provider_sid = sent.sid
        msg.status = "sent"
        msg.sent_at = datetime.now(UTC)
        msg.delivery_status = sent.status
        apply_pending_events(session, msg)
        log.info("send_accepted", message_id=str(prep.message_id), provider_sid=sent.sid)
        return SendResult(prep.message_id, msg.status, None, sent.sid)


def _record_error(prep: _Prepared, exc: TwilioRestException, settings: Settings) -> SendResult:
    code = int(exc.code) if exc.code is not None else None
    info = classify(code, exc.status)
    with session_scope() as session:
        if info.category is Category.OPT_OUT:
            lock_number(session, prep.to_index)  # the ledger write below needs it; number before row
        msg = _lock_sending_row(session, prep)
        outcome = "retryable" if info.category in (Category.RETRYABLE, Category.QUEUE_FULL) else "refused"
        if info.category is Category.OUTCOME_UNKNOWN:
            outcome = "timeout"
        _finish_attempt(
            session, prep, outcome=outcome, http_status=exc.status, error_code=code, error_message=str(exc.msg)
        )
        if msg is None:
            return SendResult(prep.message_id, "skipped", "row_changed", error_code=code)
        msg.error_code = code
        if info.category is Category.OPT_OUT:
            msg.status, msg.gate_reason = "blocked", "carrier_opt_out"
            record_carrier_opt_out(
                session,
                phone_e164=prep.to,
                station_id=prep.station_id,
                error_code=code or 21610,
                provider_ref=f"outbound:{prep.message_id}",
                occurred_at=datetime.now(UTC),
            )
        elif info.category in (Category.INVALID_RECIPIENT, Category.PERMANENT, Category.UNDELIVERABLE_NUMBER):
            msg.status, msg.gate_reason = "failed", info.category.value
            if info.marks_number and code is not None:
                on_delivery_error(session, msg, code)
        elif info.category is Category.OUTCOME_UNKNOWN:
            msg.status = "unknown"
        else:
            _retry_later(msg, prep, settings, queue_full=info.category is Category.QUEUE_FULL)
        log.info(
            "send_error", message_id=str(prep.message_id), error_code=code, http_status=exc.status, status=msg.status
        )
        return SendResult(prep.message_id, msg.status, msg.gate_reason, error_code=code)


def _retry_later(msg: OutboundMessage, prep: _Prepared, settings: Settings, *, queue_full: bool = False) -> None:
    if prep.attempts >= settings.OUTBOUND_MAX_ATTEMPTS:
        msg.status, msg.gate_reason = "failed", "retries_exhausted"
        return
    msg.status = "pending"
    msg.not_before = datetime.now(UTC) + _backoff(prep.attempts, queue_full=queue_full)


def _record_transport_error(prep: _Prepared, exc: BaseException, settings: Settings) -> SendResult:
    never_reached = request_never_reached_twilio(exc)
    with session_scope() as session:
        msg = _lock_sending_row(session, prep)
        _finish_attempt(
            session,
            prep,
            outcome="retryable" if never_reached else "timeout",
            error_message=f"{type(exc).__name__}: {str(exc)[:300]}",
        )
        if msg is None:
            return SendResult(prep.message_id, "skipped", "row_changed")
        if never_reached:
            _retry_later(msg, prep, settings)
        else:
            msg.status = "unknown"
        log.warning(
            "send_transport_error",
            message_id=str(prep.message_id),
            error=type(exc).__name__,
            never_reached=never_reached,
            status=msg.status,
        )
        return SendResult(prep.message_id, msg.status, msg.gate_reason)


def _abandon(prep: _Prepared, why: str) -> SendResult:
    with session_scope() as session:
        msg = _lock_sending_row(session, prep)
        _finish_attempt(session, prep, outcome="abandoned", error_message=why)
        if msg is None:
            return SendResult(prep.message_id, "skipped", "row_changed")
        msg.status = "pending"
        log.warning("send_abandoned_before_call", message_id=str(prep.message_id), why=why)
        return SendResult(prep.message_id, "pending", why)


def send_one(
    message_id: uuid.UUID,
    *,
    task_id: str | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> SendResult:
    """Decide, send and record one outbox row (see the module docstring).

    ``now`` overrides the gate's clock (the demo's scripted day); decided_at is always the
    database's clock.
    """
    settings = settings or get_settings()
    gate_now = now or datetime.now(UTC)
    with session_scope() as session:
        result, prep = decide(session, message_id, task_id=task_id, now=gate_now, settings=settings)
    if prep is None:
        assert result is not None
        return result

    # Step 2. A decision this old may already be in the reconciler's hands: do not call.
    age = (datetime.now(UTC) - prep.decided_at).total_seconds()
    if age > settings.OUTBOUND_SENDING_STALE_SECONDS / 2:
        return _abandon(prep, f"decision {age:.0f}s old before the call")
    try:
        sent = send_sms(
            make_client(settings),
            to=prep.to,
            body=prep.body,
            from_=prep.from_,
            messaging_service_sid=prep.messaging_service_sid,
            status_callback=settings.PUBLIC_BASE_URL + STATUS_CALLBACK_PATH,
            validity_period=settings.TWILIO_VALIDITY_PERIOD,
        )
    except TwilioRestException as exc:
        return _record_error(prep, exc, settings)
    except requests.exceptions.RequestException as exc:
        return _record_transport_error(prep, exc, settings)
    except Exception as exc:
        log.exception("send_unexpected_error", message_id=str(message_id))
        return _record_transport_error(prep, exc, settings)
    return _record_accepted(prep, sent)
