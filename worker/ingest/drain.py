"""Draining core.webhook_inbox: claim pending rows in batches, apply each in a savepoint.

A batch is two transactions:

1. Claim (committed at once): up to N pending rows, FOR UPDATE SKIP LOCKED, get
   ``attempts + 1`` and a lease (``enqueued_at = now()``; other drains skip leased rows for
   LEASE_SECONDS). Counting the attempt *before* the work means a row that kills the
   worker process (or times out every time) is still counted, and after MAX_ATTEMPTS the
   sweeper marks it failed instead of looping on it forever.
2. Apply: re-lock the claimed rows still pending, decrypt and parse all of them, order them
   by lock key, then apply the SMS rows together in one savepoint (plain texts and STOP,
   START, HELP alike: handlers.apply_sms_group) and every other row in its own, and record
   every outcome in the same transaction: a processed row commits with its effects, a bad row
   is marked failed with a readable reason without rolling back its neighbours. If the group
   fails, its savepoint is undone and its rows are applied one by one, so a bad row still
   fails alone and every outcome is what it would have been without the group.

Errors, by kind:
- bad input (BadInput, a database DataError, a bug in our code): the row is marked failed
  at once with the reason. `msgworker inbox retry ID` re-runs it after a fix.
- transient (lost connection, lock or statement timeout, deadlock, a unique race): the row
  stays pending with last_error set; the sweeper retries it after the lease, up to
  MAX_ATTEMPTS. If the connection itself is gone, the batch stops and nothing commits.

Processing a row twice has no second effect: only pending rows are applied (under the row
lock), and every write is keyed by a unique constraint.

This module owns the drain's transactions (with the CLI, tasks/ and the send flow, the only
code that opens one; tests/unit/project/test_layout.py checks it): ``drain`` and ``sweep``
open each through ``scope`` (``session_scope`` unless the caller passes another, as the demo
and the tests do). ``process_items`` and ``load_items`` run in the session they are given.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from worker.db import SessionScope, session_scope
from worker.ingest.handlers import InboxItem, Prepared, apply, apply_sms_group, is_sms, prepare
from worker.ingest.payloads import BadInput
from worker.ingest.records import StationCache
from worker.locks import LockNamespace

__all__ = [
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "DrainStats",
    "RowResult",
    "drain",
    "process_items",
    "sweep",
]

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5
LEASE_SECONDS = 30
IN_FLIGHT_SECONDS = 5
_REASON_MAX = 1000
_DIGITS = re.compile(r"\+?\d[\d\s().-]{5,}\d")

PROCESSED = "processed"
FAILED = "failed"
RETRY = "retry"  # transient: stays pending

# SQLAlchemy-wrapped and raw psycopg errors (the SMS hot path runs on the raw connection).
_TRANSIENT = (
    OperationalError,
    InterfaceError,
    IntegrityError,
    PoolTimeout,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.IntegrityError,
)
_REFUSED = (DBAPIError, psycopg.Error)


@dataclass(frozen=True, slots=True)
class RowResult:
    inbox_id: uuid.UUID
    outcome: str  # PROCESSED | FAILED | RETRY
    reason: str | None = None


@dataclass
class DrainStats:
    batches: int = 0
    processed: int = 0
    failed: int = 0
    retry: int = 0
    stopped_by: str | None = None  # "empty" | "time" | "database"
    results: list[RowResult] = field(default_factory=list)

    def add(self, results: Sequence[RowResult]) -> None:
        self.batches += 1
        for r in results:
            if r.outcome == PROCESSED:
                self.processed += 1
            elif r.outcome == FAILED:
                self.failed += 1
            else:
                self.retry += 1


class BatchAborted(Exception):
    """Raised when the database connection died mid-batch; nothing of the batch commits."""

    def __init__(self, inbox_id: uuid.UUID, reason: str) -> None:
        super().__init__(reason)
        self.inbox_id = inbox_id
        self.reason = reason


def _clip(message: str) -> str:
    # Reasons are shown by `msgworker inbox failed`: never a phone number in full.
    masked = _DIGITS.sub(lambda m: "*" * (len(m.group(0)) - 2) + m.group(0)[-2:], message)
    return masked if len(masked) <= _REASON_MAX else masked[: _REASON_MAX - 1] + "…"


def _db_reason(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    first_line = primary or (str(orig).splitlines()[0] if orig is not None and str(orig) else type(exc).__name__)
    return f"database refused it ({type(orig).__name__ if orig is not None else type(exc).__name__}): {first_line}"


def _usable(session: Session) -> bool:
    try:
        session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means the transaction is gone
        return False
    return True


def _apply_one(session: Session, stations: StationCache, p: Prepared) -> RowResult:
    item_id = p.item.id
    try:
        with session.begin_nested():
            outcome = apply(session, stations, p)
    except BadInput as exc:
        return RowResult(item_id, FAILED, _clip(str(exc)))
    except _TRANSIENT as exc:
        reason = _clip(f"transient: {_db_reason(exc) if isinstance(exc, _REFUSED) else type(exc).__name__}")
        if not _usable(session):
            raise BatchAborted(item_id, reason) from exc
        return RowResult(item_id, RETRY, reason)
    except _REFUSED as exc:
        if not _usable(session):
            raise BatchAborted(item_id, _clip(_db_reason(exc))) from exc
        return RowResult(item_id, FAILED, _clip(_db_reason(exc)))
    except Exception as exc:
        log.exception("inbox_row_error", inbox_id=str(item_id), provider=p.item.provider)
        if not _usable(session):
            raise BatchAborted(item_id, _clip(f"internal error: {type(exc).__name__}")) from exc
        return RowResult(item_id, FAILED, _clip(f"internal error: {type(exc).__name__}: {exc}"))
    if outcome.failed_reason:
        return RowResult(item_id, FAILED, _clip(outcome.failed_reason))
    return RowResult(item_id, PROCESSED, outcome.note)


def process_items(session: Session, items: Sequence[InboxItem], *, group_sms: bool = True) -> list[RowResult]:
    """Apply locked, pending inbox rows and record each outcome on its row (caller commits).

    ``group_sms=False`` applies every row alone, as a failed group's fallback does: the
    reference the grouped path is held to (tests/integration/ingest/test_grouped_consent.py).
    """
    results: list[RowResult] = []
    prepared: list[Prepared] = []
    for item in items:
        try:
            prepared.append(prepare(item))
        except BadInput as exc:
            results.append(RowResult(item.id, FAILED, _clip(str(exc))))
        except Exception as exc:
            log.exception("inbox_row_parse_error", inbox_id=str(item.id), provider=item.provider)
            results.append(RowResult(item.id, FAILED, _clip(f"internal error while parsing: {type(exc).__name__}")))
    prepared.sort(key=lambda p: p.sort_key)
    stations = StationCache()
    i = 0
    while i < len(prepared):
        if not (group_sms and is_sms(prepared[i])):
            results.append(_apply_one(session, stations, prepared[i]))
            i += 1
            continue
        # The batch's SMS rows (consecutive: they sort first): applied together, still in lock
        # order (see _apply_group).
        end = i
        while end < len(prepared) and is_sms(prepared[end]):
            end += 1
        results.extend(_apply_group(session, stations, prepared[i:end]))
        i = end
    _record(session, results)
    return results


def _apply_group(session: Session, stations: StationCache, group: Sequence[Prepared]) -> list[RowResult]:
    """SMS rows under one savepoint, their statements shared (handlers.apply_sms_group).

    Row by row, each row costs a SAVEPOINT, its statements and a RELEASE; a STOP about a dozen
    statements of its own in the consent engine. Here the group shares them: one pipelined
    round trip for the messages and about a dozen statements per round of consent texts,
    however many. Any error undoes the whole group (its savepoint) and its rows are applied
    again one by one with _apply_one, exactly as without the group, so a bad row still fails
    alone and the outcome of every row is what it would have been. Rows the group cannot
    finish are applied alone afterwards.
    """
    try:
        with session.begin_nested():
            outcomes = apply_sms_group(session, stations, group)
    except Exception as exc:  # noqa: BLE001 - every row is re-applied alone, which classifies the error
        log.info("inbox_group_fallback", rows=len(group), error=type(exc).__name__)
        return [_apply_one(session, stations, p) for p in group]
    results: list[RowResult] = []
    for p, outcome in zip(group, outcomes, strict=True):
        if outcome is None:
            results.append(_apply_one(session, stations, p))
        else:
            results.append(RowResult(p.item.id, PROCESSED, outcome.note))
    return results


def _record(session: Session, results: Sequence[RowResult]) -> None:
    done = [r.inbox_id for r in results if r.outcome == PROCESSED]
    if done:
        session.execute(
            text(
                "UPDATE core.webhook_inbox SET status = 'processed', processed_at = now(), last_error = NULL"
                " WHERE id = ANY(:ids)"
            ),
            {"ids": done},
        )
    failed = [{"id": r.inbox_id, "reason": r.reason} for r in results if r.outcome == FAILED]
    if failed:
        session.execute(
            text(
                "UPDATE core.webhook_inbox SET status = 'failed', processed_at = now(), last_error = :reason"
                " WHERE id = :id"
            ),
            failed,
        )
        for r in results:
            if r.outcome == FAILED:
                log.warning("inbox_row_failed", inbox_id=str(r.inbox_id), reason=r.reason)
    retry = [{"id": r.inbox_id, "reason": r.reason} for r in results if r.outcome == RETRY]
    if retry:
        session.execute(text("UPDATE core.webhook_inbox SET last_error = :reason WHERE id = :id"), retry)
        for r in results:
            if r.outcome == RETRY:
                log.info("inbox_row_deferred", inbox_id=str(r.inbox_id), reason=r.reason)


# Rows of a number another drain claimed moments ago (leased, still pending: its batch has not
# committed) are left for the next claim. Applying them here would wait on that drain's number
# lock until its whole batch commits, holding this batch's other numbers' locks meanwhile, and
# the drains would queue behind each other (the realistic mix, a third of texts from a number
# that texted just before, measured ~70% of the plain throughput that way: bench/RESULTS.md).
# Only for IN_FLIGHT_SECONDS, a batch's time many times over: a row whose drain died, or one
# that kills every drain, holds its number's later texts back no longer than that.
_CLAIM = text(
    "UPDATE core.webhook_inbox SET attempts = attempts + 1, enqueued_at = now()"
    " WHERE id IN ("
    "  SELECT i.id FROM core.webhook_inbox i"
    "  WHERE i.status = 'pending' AND i.attempts < :max_attempts"
    "   AND (i.enqueued_at IS NULL OR i.enqueued_at < now() - make_interval(secs => :lease))"
    "   AND (i.from_index IS NULL OR NOT EXISTS ("
    "    SELECT 1 FROM core.webhook_inbox j WHERE j.from_index = i.from_index AND j.status = 'pending'"
    "     AND j.enqueued_at >= now() - make_interval(secs => :in_flight)))"
    "  ORDER BY i.received_at LIMIT :n FOR UPDATE OF i SKIP LOCKED)"
    " RETURNING id"
)
# Claims take turns (a transaction lock, held for the claim statement's few milliseconds), so
# each claim's statement, started after the lock, sees every earlier claim's leases.
_CLAIM_TURN = text("SELECT pg_advisory_xact_lock(:ns, 0)")
_LOCK_CLAIMED = text(
    "SELECT id, provider, payload_encrypted, content_type, received_at, attempts FROM core.webhook_inbox"
    " WHERE id = ANY(:ids) AND status = 'pending' ORDER BY received_at FOR UPDATE"
)


def load_items(session: Session, ids: Sequence[uuid.UUID]) -> list[InboxItem]:
    """Lock the given rows and return those still pending.

    This waits rather than SKIP LOCKED: the rows are ours by lease, and the only other
    lockers are short (another drain's claim scan can hold a row lock on a row it then does
    not take). A row processed meanwhile by someone else fails the pending re-check.
    """
    rows = session.execute(_LOCK_CLAIMED, {"ids": list(ids)}).all()
    return [InboxItem(*row) for row in rows]


def _claim(batch_size: int, scope: SessionScope = session_scope) -> list[uuid.UUID]:
    with scope() as session:
        # The claim need not survive a database crash (that loses only an attempt count and a
        # lease, never a row), so it does not wait for the WAL flush.
        session.execute(text("SET LOCAL synchronous_commit = off"))
        session.execute(_CLAIM_TURN, {"ns": int(LockNamespace.INBOX_CLAIM)})
        params = {"max_attempts": MAX_ATTEMPTS, "lease": LEASE_SECONDS, "in_flight": IN_FLIGHT_SECONDS, "n": batch_size}
        return list(session.execute(_CLAIM, params).scalars())


def _run_batch(ids: Sequence[uuid.UUID], scope: SessionScope = session_scope) -> list[RowResult]:
    with scope() as session:
        return process_items(session, load_items(session, ids))


def _note_aborted(exc: BatchAborted, scope: SessionScope) -> None:
    try:
        with scope() as session:
            session.execute(
                text("UPDATE core.webhook_inbox SET last_error = :reason WHERE id = :id AND status = 'pending'"),
                {"id": exc.inbox_id, "reason": exc.reason},
            )
    except Exception as err:  # noqa: BLE001 - the database is likely down; the sweeper retries
        log.warning("inbox_abort_not_recorded", inbox_id=str(exc.inbox_id), error=type(err).__name__)


def drain(
    *,
    batch_size: int,
    max_seconds: float,
    release: Callable[[], None] | None = None,
    linger_seconds: float = 0.0,
    scope: SessionScope = session_scope,
) -> DrainStats:
    """Process pending inbox rows until none is left or ``max_seconds`` have passed.

    ``release`` (the drain task passes the kick's clear, see kick.py) is called once, when this
    run stops covering new rows: before its final look for rows (an empty claim is confirmed by
    one more claim after the release), or after a full batch, to invite a second drain to help
    with a backlog. Never twice: after the first, the kick belongs to whichever drain a later
    webhook published, and clearing it again invited a third drain while this one went on, so
    under a backlog drain tasks piled up in the broker ahead of send tasks and ticks (47 queued
    in a 10,000-webhook run, issue 14 point 3). A run that has released stops at its first empty
    claim: that claim came after the release, so it saw every row committed before it.
    ``linger_seconds``: after a small batch, wait this long before the
    next claim, so that rows arriving one by one are taken in batches (fewer transactions
    and tasks per row at moderate load, for a few milliseconds of latency). ``scope`` opens
    each claim's and each batch's transaction.
    """
    stats = DrainStats()
    deadline = time.monotonic() + max_seconds
    released = False
    while True:
        if time.monotonic() >= deadline:
            stats.stopped_by = "time"
            break
        try:
            ids = _claim(batch_size, scope)
            if not ids:
                if release is not None and not released:
                    release()
                    released = True
                    continue  # the final look, after the release
                stats.stopped_by = "empty"
                break
            started = time.perf_counter()
            results = _run_batch(ids, scope)
        except BatchAborted as exc:
            log.warning("inbox_batch_aborted", inbox_id=str(exc.inbox_id), reason=exc.reason)
            _note_aborted(exc, scope)
            stats.stopped_by = "database"
            break
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            # The claim or the commit failed: the database is unavailable. The claimed rows
            # stay pending (their lease runs out) and the sweeper picks them up later.
            log.warning("inbox_drain_database_error", error=type(exc).__name__, detail=str(exc).splitlines()[0][:200])
            stats.stopped_by = "database"
            break
        stats.add(results)
        stats.results.extend(results)
        log.info(
            "inbox_batch_done",
            claimed=len(ids),
            processed=sum(r.outcome == PROCESSED for r in results),
            failed=sum(r.outcome == FAILED for r in results),
            deferred=sum(r.outcome == RETRY for r in results),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if len(ids) >= batch_size:
            if release is not None and not released:
                release()  # a backlog: let another drain take the next batch alongside this one
                released = True
        elif linger_seconds > 0 and len(ids) < batch_size // 4:
            time.sleep(linger_seconds)
    if release is not None and stats.stopped_by != "empty" and not released:
        release()  # stopping early: the next kick must start a new drain
    return stats


@dataclass(frozen=True, slots=True)
class SweepResult:
    gave_up: int
    stale: int
    orphans_attached: int


def sweep(*, grace_seconds: int, scope: SessionScope = session_scope) -> SweepResult:
    """Give up on rows out of attempts, count rows left pending past the grace period.

    The caller drains when ``stale`` is non-zero (tasks/ingest.py); delivery events that
    arrived before their outbound row are re-attached here too.
    """
    from worker.outbound.delivery import attach_orphans

    with scope() as session:
        gave_up = session.execute(
            text(
                "UPDATE core.webhook_inbox SET status = 'failed', processed_at = now(),"
                " last_error = left('gave up after ' || attempts || ' attempts; last error: '"
                "  || coalesce(last_error, 'none recorded (the worker may have died while processing it)'), 1000)"
                " WHERE status = 'pending' AND attempts >= :max_attempts"
                "  AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => :lease))"
                " RETURNING id"
            ),
            {"max_attempts": MAX_ATTEMPTS, "lease": LEASE_SECONDS},
        ).scalars().all()
        for inbox_id in gave_up:
            log.warning("inbox_row_gave_up", inbox_id=str(inbox_id), attempts=MAX_ATTEMPTS)
        stale = session.execute(
            text(
                "SELECT count(*) FROM core.webhook_inbox WHERE status = 'pending'"
                " AND received_at < now() - make_interval(secs => :grace) AND attempts < :max_attempts"
                " AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => :lease))"
            ),
            {"grace": grace_seconds, "max_attempts": MAX_ATTEMPTS, "lease": LEASE_SECONDS},
        ).scalar_one()
        orphans = attach_orphans(session)
    return SweepResult(gave_up=len(gave_up), stale=int(stale), orphans_attached=orphans)
