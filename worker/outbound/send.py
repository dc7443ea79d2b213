"""Sending outbox rows: decide under the numbers' locks, commit, call Twilio, record.

Delivery semantics: a duplicate text is a compliance event, so nothing
here retries blindly. A batch of rows (one send task's ids) is sent in three steps:

1. **Decide** (worker/outbound/decide.py, one transaction): take every number's advisory lock
   *before* reading consent or locking a row, claim the rows (``FOR UPDATE SKIP LOCKED``:
   another worker has it -> leave it), refuse rows an earlier attempt may have sent (an
   attempt with no outcome, or "accepted"/"timeout"), read the facts (worker/outbound/facts.py),
   evaluate the pure gate (compliance/gate.py), take a token from the sender's bucket, and
   write each decision, reason and basis, with a SendAttempt (task id, no outcome yet) and
   status "sending" for each allowed one, in one final statement. Commit.
2. **Call Twilio** (no transaction open; the batch's calls in parallel threads, one pooled
   client per process), with the status callback URL and validity period, through the
   sender's Messaging Service when it has one.
3. **Record** (worker/outbound/results.py): the accepted sids in one transaction, with callbacks
   that beat us here; each error by its category (compliance/twilio_errors.py): 21610 ->
   blocked plus a carrier opt-out in the ledger; invalid numbers -> failed plus
   undeliverable; 429/500/502/503 and connections that never reached Twilio -> back to
   pending with backoff; a read timeout or 504 -> "unknown", which only the reconciler
   (worker/outbound/reconcile.py) settles by looking the message up at Twilio.

Why the opt-out race is safe: consent recording (worker.consent.ledger) and step 1 take the
same ``lock_number`` before reading or writing the number's consent, and hold it to commit.
So either the decision commits first (the text was decided before the opt-out existed,
which is lawful) or the opt-out commits first and the decision, which reads consent only
after getting the lock, sees it and blocks. The decision's UPDATE is the transaction's last
statement and stores ``pg_current_snapshot()`` in gate_basis: the set of transactions it
could see, which tests (tests/e2e/outbound/test_send_race.py) and auditors can check against the
opt-out event's transaction.

This module owns the flow's transactions (tests/unit/project/test_layout.py lets only the
entry points, tasks/, cli/ and the web handlers, this module and the ingest drain open one):
each step above, and each error recorded, is one ``scope()`` transaction, ``session_scope``
unless the caller passes another (the demo passes the command's; the tests pass one inside
their rolled-back transaction).
The functions it calls in decide.py, results.py and reconcile.py take that session and never
commit. ``reconcile_due`` drives the reconciler the same way: one transaction to pick the
rows, the Twilio lookups with none open, one transaction per row settled.

A crash between 1 and 3 leaves the row "sending" with an attempt with no outcome; the
reconciler treats such rows, once stale, like "unknown". A worker paused for longer than
that between 1 and 2 would race the reconciler, so step 2 refuses to call Twilio when the
decision is older than half the staleness threshold.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
import structlog
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException

from worker.db import SessionScope, session_scope
from worker.outbound.decide import ClaimedRow, Prepared, SendResult, decide, decide_batch
from worker.outbound.reconcile import ReconcileReport, due_candidates, look_up, settle
from worker.outbound.results import abandon, record_accepted, record_error, record_transport_error
from worker.provider.client import SentMessage, make_client, send_sms
from worker.settings import Settings, get_settings

__all__ = [
    "STATUS_CALLBACK_PATH",
    "ClaimedRow",
    "Prepared",
    "ReconcileReport",
    "SendResult",
    "decide",
    "reconcile_due",
    "send_batch",
    "send_one",
]

log = structlog.get_logger(__name__)

STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
_MAX_PARALLEL_CALLS = 16

_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """One thread pool per process (rebuilt after a fork: threads do not survive one)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(_MAX_PARALLEL_CALLS, thread_name_prefix="twilio-send"))
        return _pool[1]


def _call(prep: Prepared, settings: Settings) -> SentMessage | BaseException:
    try:
        return send_sms(
            make_client(settings),
            to=prep.to,
            body=prep.body,
            from_=prep.from_,
            messaging_service_sid=prep.messaging_service_sid,
            status_callback=settings.PUBLIC_BASE_URL + STATUS_CALLBACK_PATH,
            validity_period=settings.TWILIO_VALIDITY_PERIOD,
        )
    except Exception as exc:  # noqa: BLE001 - classified by the caller; unknown ones become "unknown"
        return exc


def _record_failure(session: Session, prep: Prepared, exc: BaseException, settings: Settings) -> SendResult:
    if isinstance(exc, TwilioRestException):
        return record_error(session, prep, exc, settings)
    if not isinstance(exc, requests.exceptions.RequestException):
        log.error("send_unexpected_error", message_id=str(prep.message_id), error=type(exc).__name__)
    return record_transport_error(session, prep, exc, settings)


def send_batch(
    message_ids: Sequence[uuid.UUID],
    *,
    task_id: str | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
    scope: SessionScope = session_scope,
) -> list[SendResult]:
    """Decide, send and record these rows (see the module docstring); one result per id, in order.

    ``now`` overrides the gate's clock (the demo's scripted day); decided_at is always the
    database's clock. ``scope`` opens each step's transaction.
    """
    settings = settings or get_settings()
    gate_now = now or datetime.now(UTC)
    with scope() as session:
        results, prepared = decide_batch(session, message_ids, task_id=task_id, now=gate_now, settings=settings)

    # Step 2. A decision this old may already be in the reconciler's hands: do not call.
    calls: list[Prepared] = []
    for prep in prepared:
        age = (datetime.now(UTC) - prep.decided_at).total_seconds()
        if age > settings.OUTBOUND_SENDING_STALE_SECONDS / 2:
            with scope() as session:
                results.append(abandon(session, prep, f"decision {age:.0f}s old before the call"))
        else:
            calls.append(prep)
    if len(calls) == 1:
        answers = [_call(calls[0], settings)]
    else:
        answers = list(_executor().map(lambda p: _call(p, settings), calls))

    # Step 3.
    accepted = [(p, a) for p, a in zip(calls, answers, strict=True) if isinstance(a, SentMessage)]
    if accepted:
        with scope() as session:
            results.extend(record_accepted(session, accepted))
    for prep, answer in zip(calls, answers, strict=True):
        if not isinstance(answer, SentMessage):
            with scope() as session:  # one transaction per error: one bad row cannot undo another's record
                results.append(_record_failure(session, prep, answer, settings))
    by_id = {r.message_id: r for r in results}
    return [by_id[i] for i in message_ids]


def send_one(
    message_id: uuid.UUID,
    *,
    task_id: str | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
    scope: SessionScope = session_scope,
) -> SendResult:
    """send_batch for one row."""
    return send_batch([message_id], task_id=task_id, now=now, settings=settings, scope=scope)[0]


def reconcile_due(
    *, settings: Settings | None = None, limit: int = 100, scope: SessionScope = session_scope
) -> ReconcileReport:
    """One pass over rows whose outcome is unknown (worker/outbound/reconcile.py says how).

    No transaction is open during a Twilio lookup; each row is settled in its own, so one
    row's failure leaves the others' settlements committed.
    """
    s = settings or get_settings()
    report = ReconcileReport()
    with scope() as session:
        rows = due_candidates(session, s, limit=limit, report=report)
    if not rows:
        return report
    client = make_client(s)
    for row in rows:
        found = look_up(client, row, report)
        if found is None:
            continue
        with scope() as session:
            settle(session, row, found, s, report)
    if report.found or report.requeued:
        log.info("reconcile_pass", found=len(report.found), requeued=len(report.requeued), waiting=len(report.waiting))
    return report
