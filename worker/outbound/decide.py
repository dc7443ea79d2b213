"""Step 1 of sending (see worker/outbound/send.py): decide a batch of outbox rows and commit the decisions.

In one transaction: lock the numbers, claim the rows, read the facts (worker/outbound/facts.py),
evaluate the pure gate (compliance/gate.py), take rate-limit tokens for the allowed ones (one
per SMS segment, compliance/segments.py), and write every decision, reason and basis, plus an
attempt row for each send, in one statement.

A number's rows are decided one after another, in due order (``not_before``, then id), and
each decision sees the ones before it: the frequency cap counts the marketing texts this batch
has already let out to the number (``marketing_in_batch`` in the basis) on top of those the
facts query found. A text the rate limit sends back to the outbox did not go out, so it is not
counted. Other batches and processes cannot interleave: every decider of a number holds its
advisory lock from before the facts are read until its decisions commit, and the facts are
read after the lock, so the next one counts these texts among the rows already "sending"
(tests/integration/outbound/test_frequency_cap.py, tests/e2e/outbound/test_frequency_cap.py).

That statement is the transaction's last: each decision stores ``pg_current_snapshot()`` in
its gate_basis, the set of transactions the decision could see, taken after every number's
lock was held. An opt-out whose transaction is not in that snapshot committed after the
decision did (tests/e2e/outbound/test_send_race.py checks exactly that against the ledger).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.gate import GatePolicy, Outcome, SendPurpose, evaluate_send
from compliance.segments import SegmentCount, count_segments
from worker import metrics
from worker.models.outbox import OutboxStatus
from worker.outbound.facts import ClaimedRow, gate_policy, read_sendable
from worker.outbound.rate_limit import take_or_reserve
from worker.settings import Settings

__all__ = ["ClaimedRow", "Prepared", "SendResult", "claim_batch", "decide", "decide_batch"]

log = structlog.get_logger(__name__)

_WRITE_DECISIONS = text(
    """
    WITH d AS (
      SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:decisions AS text[]), CAST(:reasons AS text[]),
        CAST(:bases AS text[]), CAST(:not_befores AS timestamptz[]), CAST(:attempt_ids AS uuid[])
      ) AS d(id, status, decision, reason, basis, not_before, attempt_id)),
    attempt AS (
      INSERT INTO core.send_attempts (id, outbound_id, task_id)
      SELECT d.attempt_id, d.id, CAST(:task_id AS text) FROM d WHERE d.attempt_id IS NOT NULL)
    UPDATE core.outbound_messages o
    SET status = d.status, gate_decision = d.decision, gate_reason = d.reason,
        gate_basis = CAST(d.basis AS jsonb) || jsonb_build_object('snapshot', pg_current_snapshot()::text),
        decided_at = clock_timestamp(), not_before = COALESCE(d.not_before, o.not_before),
        attempts = o.attempts + CASE WHEN d.attempt_id IS NULL THEN 0 ELSE 1 END, updated_at = now()
    FROM d WHERE o.id = d.id
    RETURNING o.id, o.decided_at
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
class Prepared:
    """An allowed send, carried out of step 1's transaction into the Twilio call."""

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


def _set_status(session: Session, message_id: uuid.UUID, status: str, reason: str | None) -> None:
    session.execute(
        text(
            "UPDATE core.outbound_messages SET status = :status, gate_reason = COALESCE(:reason, gate_reason), "
            "updated_at = now() WHERE id = :id"
        ),
        {"id": message_id, "status": status, "reason": reason},
    )


def claim_batch(
    session: Session, ids: Sequence[uuid.UUID], *, now: datetime
) -> tuple[dict[uuid.UUID, SendResult], list[ClaimedRow]]:
    """The read half of step 1: (rows settled without a decision, rows claimed for a decision in
    the order they are decided: grouped by number, each number's by due time, then id).

    Locks (numbers, then rows) are held until the caller's commit.
    """
    indexes, claimed_rows = read_sendable(session, ids, now=now)
    results = {i: SendResult(i, "skipped", "not_sendable") for i in ids if i not in indexes}
    to_decide: list[ClaimedRow] = []
    for message_id in indexes:
        claimed = claimed_rows.get(message_id)
        if claimed is None:
            results[message_id] = SendResult(message_id, "skipped", "not_sendable_or_locked")
            continue
        row = claimed.row
        if claimed.maybe_sent:
            # A previous run may have reached Twilio: only the reconciler may settle this row.
            _set_status(session, message_id, OutboxStatus.UNKNOWN, None)
            log.warning("send_refused_prior_attempt", message_id=str(message_id))
            results[message_id] = SendResult(message_id, OutboxStatus.UNKNOWN, "prior_attempt")
            continue
        if row["channel"] != "sms" or row["sender_id"] is None or not row["sender_active"]:
            reason = "channel_not_supported" if row["channel"] != "sms" else "no_active_sender"
            _set_status(session, message_id, OutboxStatus.FAILED, reason)
            log.warning("send_failed_no_sender", message_id=str(message_id), reason=reason)
            results[message_id] = SendResult(message_id, OutboxStatus.FAILED, reason)
            continue
        to_decide.append(claimed)
    to_decide.sort(key=lambda c: (bytes(c.row["to_index"]), c.row["not_before"], c.row["id"]))
    return results, to_decide


def _evaluate(claimed: ClaimedRow, now: datetime, policy: GatePolicy, in_batch: int) -> ClaimedRow:
    """The gate's decision on this row, counting the ``in_batch`` marketing texts this batch
    already let out to the number as sent."""
    facts = claimed.facts
    if in_batch and facts.purpose is SendPurpose.MARKETING:
        facts = replace(facts, marketing_sent_last_24h=facts.marketing_sent_last_24h + in_batch)
    return replace(claimed, facts=facts, decision=evaluate_send(facts, now, policy))


def _basis(claimed: ClaimedRow, now: datetime, segments: SegmentCount, in_batch: int) -> str:
    facts = claimed.facts
    return json.dumps(
        {
            **claimed.decided.to_json(),
            "now": now.isoformat(),
            "zones": list(facts.location.zones),
            "states": list(facts.location.states),
            "location": list(facts.location.sources),
            "marketing_sent_last_24h": facts.marketing_sent_last_24h,
            # Of those, the ones this batch let out before this row (decided, not yet committed).
            "marketing_in_batch": in_batch,
            # What the rate limit charged (or would have): Twilio paces and bills by segment.
            "segments": segments.segments,
            "encoding": segments.encoding,
        }
    )


def decide_batch(
    session: Session, ids: Sequence[uuid.UUID], *, task_id: str | None, now: datetime, settings: Settings
) -> tuple[list[SendResult], list[Prepared]]:
    """Step 1 in the caller's transaction: final results for rows not sent, and the sends to make."""
    settled, to_decide = claim_batch(session, ids, now=now)
    results = list(settled.values())
    policy = gate_policy(settings)
    cols: dict[str, list[Any]] = {k: [] for k in ("ids", "statuses", "decisions", "reasons", "bases",
                                                  "not_befores", "attempt_ids")}  # fmt: skip
    sends: dict[uuid.UUID, tuple[ClaimedRow, uuid.UUID, int]] = {}
    # Marketing texts this batch has let out, per number (the frequency cap counts them).
    went_out: Counter[bytes] = Counter()
    for undecided in to_decide:
        to_index = bytes(undecided.row["to_index"])
        in_batch = went_out[to_index]
        claimed = _evaluate(undecided, now, policy, in_batch)
        message_id, decision = claimed.row["id"], claimed.decided
        metrics.send_decided(session, claimed.facts, decision)
        reason = decision.reason.value if decision.reason else None
        status, not_before, attempt_id = decision.outcome.value, decision.defer_until, None
        segments = count_segments(claimed.row["body"])
        if decision.outcome is Outcome.ALLOWED:
            status = OutboxStatus.SENDING
            wait = 0.0
            if settings.OUTBOUND_RATE_LIMIT_ENABLED:
                # Twilio's MPS counts segments: a 3-segment text takes 3 tokens.
                rate = float(claimed.row["rate_per_second"] or 1.0)
                wait = take_or_reserve(session, sender_id=str(claimed.row["sender_id"]), message_id=message_id,
                                       rate=rate, cost=segments.segments)
            if wait > 0:
                # Back to the outbox until its token is due (its send task then, if the token is
                # reserved for it: worker/outbound/rate_limit.py; else the release tick).
                status, not_before = OutboxStatus.PENDING, now + timedelta(seconds=wait)
                metrics.rate_limit_wait(session, wait)
                results.append(SendResult(message_id, OutboxStatus.PENDING, "rate_limited"))
                log.debug("send_rate_limited", message_id=str(message_id), segments=segments.segments, wait_s=wait)
            else:
                attempt_id = uuid.uuid4()
                sends[message_id] = (claimed, attempt_id, segments.segments)
                if claimed.facts.purpose is SendPurpose.MARKETING:
                    went_out[to_index] += 1
        else:
            results.append(SendResult(message_id, status, reason))
            log.info(f"send_{status}", message_id=str(message_id), reason=reason)
        for key, value in (("ids", message_id), ("statuses", status), ("decisions", decision.outcome.value),
                           ("reasons", reason), ("bases", _basis(claimed, now, segments, in_batch)),
                           ("not_befores", not_before), ("attempt_ids", attempt_id)):  # fmt: skip
            cols[key].append(value)
    if not cols["ids"]:
        return results, []
    decided_at = {r.id: r.decided_at for r in session.execute(_WRITE_DECISIONS, {**cols, "task_id": task_id})}
    prepared: list[Prepared] = []
    for message_id, (claimed, attempt_id, n_segments) in sends.items():
        row = claimed.row
        prepared.append(
            Prepared(
                message_id=message_id,
                attempt_id=attempt_id,
                station_id=row["station_id"],
                to_index=bytes(row["to_index"]),
                to=claimed.e164,
                body=row["body"],
                from_=None if row["messaging_service_sid"] else row["sender_address"],
                messaging_service_sid=row["messaging_service_sid"],
                attempts=int(row["attempts"]) + 1,
                decided_at=decided_at[message_id],
            )
        )
        log.debug("send_allowed", message_id=str(message_id), attempt_id=str(attempt_id), segments=n_segments)
    return results, prepared


def decide(
    session: Session, message_id: uuid.UUID, *, task_id: str | None, now: datetime, settings: Settings
) -> tuple[SendResult | None, Prepared | None]:
    """decide_batch for one row: (final result, None) or (None, the send to make)."""
    results, prepared = decide_batch(session, [message_id], task_id=task_id, now=now, settings=settings)
    return (None, prepared[0]) if prepared else (results[0], None)
