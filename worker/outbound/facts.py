"""Claiming an outbox row and reading the send gate's facts: two statements, one round trip.

compliance.gate is pure; this module is its only reader. Consent recording takes the same
per-number advisory lock (worker.locks.lock_number) before it reads or writes a number's
consent, so the facts read here cannot change until the decision commits
(worker/outbound/send.py explains why that makes the race with an opt-out safe).

Two statements for a whole batch of rows, sent together in one psycopg pipeline on the
session's own connection (``read_sendable``), because the decision is on every send's critical
path: SQLAlchemy's per-statement work and a second round trip were most of its cost
(bench/RESULTS.md). The server still runs them one after the other, each with its own
snapshot, which is what the lock-then-read order below needs:

1. The lock statement: which of the rows are still sendable, and every one of their numbers'
   advisory locks, taken in ascending key order (the order ``worker.locks.lock_numbers``
   and bulk consent imports use) before any outbox row is locked. Consent recording takes a
   number's lock and then cancels that number's unsent rows, so locking a row first would
   deadlock with it. The key is computed in SQL exactly as ``worker.locks`` computes it (the
   blind index's first four bytes, big-endian, signed); tests/integration/worker/test_locks.py
   holds one and checks the other is busy. The statement also switches this transaction to
   generic plans: re-planning the facts query each time cost more than running it.
2. The claim statement: locks the rows (``FOR UPDATE SKIP LOCKED``) and, in the same
   statement, reads each row's sender, whether an earlier attempt may have reached Twilio,
   the undeliverable code, an earlier confirmation, the marketing count in the last 24 h,
   the relationship (booking or inbound message), the customer's address (or the state staff
   gave for a held row, worker/outbound/held.py), the consent rows covering the send
   (business-wide and the station's), and whether a text from the number is still pending
   in the inbox (stored and acknowledged by the receiver, not yet applied by ingest, which
   marks it processed in the same transaction as its consent effects; an index probe on the
   sender's blind index, migration 0007), or an inbound SMS whose sender is not known (stored
   before that migration or by an older receiver: it could be a STOP from anyone, so every
   send waits for it; a second probe, once per statement). It runs after the locks in a
   statement of its own:
   a READ COMMITTED statement reads the snapshot taken when it starts, so reads inside the
   locking statement could miss an opt-out committed while it waited.

Because the claim is sent before the lock statement's answer is back, it filters on the same
"sendable" condition itself, and ``read_sendable`` keeps only rows the lock statement named:
a row that became sendable between the two statements was claimed without its number's lock,
so it is left alone (its row lock ends with the transaction; nothing is written to it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from psycopg.rows import dict_row
from sqlalchemy.orm import Session

from compliance.consent_rules import ConsentSnapshot
from compliance.gate import GatePolicy, SendDecision, SendFacts, SendPurpose
from compliance.recipient import RecipientLocation, locate, staff_attributed
from compliance.us_states import state_from_address
from worker import pii
from worker.consent.state import SNAPSHOT_FIELDS, snapshot_of
from worker.db import driver_connection
from worker.locks import LockNamespace
from worker.models.outbox import OutboxStatus
from worker.settings import Settings, get_settings

__all__ = ["LOCK_KEY_SQL", "SENDABLE", "ClaimedRow", "gate_policy", "read_sendable"]

log = structlog.get_logger(__name__)

SENDABLE = f"(o.status = 'queued' OR (o.status IN {OutboxStatus.WAITING.sql} AND o.not_before <= now()))"

# worker.locks._key in SQL: the first four bytes of the blind index as a signed big-endian int.
LOCK_KEY_SQL = "(('x' || encode(substring(o.to_index from 1 for 4), 'hex'))::bit(32))::int"

_LOCK_SENDABLE = (
    f"""
    WITH rows AS (
      SELECT o.id, o.to_index, {LOCK_KEY_SQL} AS k FROM core.outbound_messages o
      WHERE o.id = ANY(CAST(%(ids)s AS uuid[])) AND {SENDABLE}),
    locked AS (
      SELECT count(pg_advisory_xact_lock({int(LockNamespace.PHONE)}, k)) AS n
      FROM (SELECT DISTINCT k FROM rows ORDER BY k) AS ordered)
    SELECT rows.id, rows.to_index, locked.n, set_config('plan_cache_mode', 'force_generic_plan', true)
    FROM rows, locked
    """  # noqa: S608 - constant SQL
)

_STATE_COLUMNS = ", ".join(f"cs.{name}" for name in SNAPSHOT_FIELDS)

# What went (or may have gone) out, for the frequency cap and the one-confirmation rule:
# OutboxStatus.WENT_OUT, which includes "unknown" (it may have been accepted).
_CLAIM_WITH_FACTS = (
    f"""
    WITH c AS (
      SELECT o.id, o.station_id, o.to_index, o.to_encrypted, o.body, o.purpose, o.campaign_id, o.not_before,
             o.in_reply_to_event_id, o.attempts, o.channel, o.sender_id,
             o.recipient_state, o.location_source, o.reviewed_by, o.reviewed_at
      FROM core.outbound_messages o
      WHERE o.id = ANY(CAST(%(ids)s AS uuid[])) AND {SENDABLE}
      FOR UPDATE OF o SKIP LOCKED)
    SELECT c.*, s.address AS sender_address, s.messaging_service_sid, s.rate_per_second,
      s.is_active AS sender_active,
      EXISTS (SELECT 1 FROM core.send_attempts a WHERE a.outbound_id = c.id
              AND (a.outcome IS NULL OR a.outcome IN ('accepted', 'timeout'))) AS maybe_sent,
      (SELECT u.error_code FROM compliance.undeliverable_numbers u WHERE u.phone_index = c.to_index) AS undeliverable,
      CASE WHEN c.in_reply_to_event_id IS NULL THEN false ELSE EXISTS (
        SELECT 1 FROM core.outbound_messages o
        WHERE o.in_reply_to_event_id = c.in_reply_to_event_id AND o.id <> c.id AND o.purpose = 'compliance'
          AND o.status IN {OutboxStatus.WENT_OUT.sql}) END AS confirmation_sent,
      CASE WHEN c.purpose = 'marketing' THEN (
        SELECT count(*) FROM core.outbound_messages o
        WHERE o.to_index = c.to_index AND o.purpose = 'marketing' AND o.id <> c.id
          AND o.status IN {OutboxStatus.WENT_OUT.sql}
          AND o.decided_at > CAST(%(since)s AS timestamptz)) ELSE 0 END AS marketing_24h,
      CASE WHEN c.purpose = 'transactional' THEN EXISTS (
        SELECT 1 FROM core.customers cu
        WHERE cu.station_id = c.station_id AND cu.phone_index = c.to_index AND cu.deleted_at IS NULL
          AND (EXISTS (SELECT 1 FROM core.bookings b WHERE b.customer_id = cu.id AND b.deleted_at IS NULL)
               OR EXISTS (SELECT 1 FROM core.message_threads t JOIN core.messages m ON m.thread_id = t.id
                          WHERE t.customer_id = cu.id AND m.direction = 'inbound'))) ELSE true END AS relationship,
      (SELECT cu.address_encrypted FROM core.customers cu
        WHERE cu.station_id = c.station_id AND cu.phone_index = c.to_index AND cu.deleted_at IS NULL
          AND cu.address_encrypted IS NOT NULL
        ORDER BY cu.created_at LIMIT 1) AS address,
      (EXISTS (SELECT 1 FROM core.webhook_inbox i WHERE i.from_index = c.to_index AND i.status = 'pending')
       OR EXISTS (SELECT 1 FROM core.webhook_inbox i WHERE i.status = 'pending' AND i.provider = 'twilio_sms'
                  AND i.from_index IS NULL)) AS inbox_pending,
      cs.id IS NOT NULL AS has_state, cs.station_id AS state_station_id, {_STATE_COLUMNS}
    FROM c
    LEFT JOIN identity.station_senders s ON s.id = c.sender_id
    LEFT JOIN compliance.consent_state cs
      ON cs.phone_index = c.to_index AND (cs.station_id IS NULL OR cs.station_id = c.station_id)
    """  # noqa: S608 - column names from the model, values bound
)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A row claimed under its number's lock: the locked row and its sender, the facts for the
    gate, and, once worker/outbound/decide.py has evaluated them, the gate's decision."""

    row: Mapping[str, Any]
    facts: SendFacts
    e164: str
    maybe_sent: bool
    decision: SendDecision | None = None

    @property
    def decided(self) -> SendDecision:
        """The decision; asking before the row was decided is a bug in the caller."""
        if self.decision is None:
            raise RuntimeError("outbox row read but not decided yet")
        return self.decision


def gate_policy(settings: Settings | None = None) -> GatePolicy:
    s = settings or get_settings()
    return GatePolicy(
        marketing_cap_per_24h=s.OUTBOUND_MARKETING_CAP_PER_24H,
        quiet_hours_for_transactional=s.OUTBOUND_QUIET_HOURS_TRANSACTIONAL,
        quiet_hours_for_compliance=s.OUTBOUND_QUIET_HOURS_COMPLIANCE,
    )


def read_sendable(
    session: Session, ids: Sequence[uuid.UUID], *, now: datetime
) -> tuple[dict[uuid.UUID, bytes], dict[uuid.UUID, ClaimedRow]]:
    """Both statements in one round trip: ({row id: blind index} of the rows still sendable, their
    numbers now locked; {row id: the claimed row with its facts}).

    A row in the first and not the second is claimed by another transaction (or was settled
    while the lock waited). Locks last until the caller's commit.
    """
    conn = driver_connection(session)
    params = {"ids": list(ids), "since": now - timedelta(hours=24)}
    with conn.cursor() as locks, conn.cursor(row_factory=dict_row) as claims:
        with conn.pipeline():
            locks.execute(_LOCK_SENDABLE, params, prepare=True)
            claims.execute(_CLAIM_WITH_FACTS, params, prepare=True)
        indexes = {row[0]: bytes(row[1]) for row in locks.fetchall()}
        grouped: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for r in claims.fetchall():
            if r["id"] in indexes:  # claimed under its number's lock (see the module docstring)
                grouped.setdefault(r["id"], []).append(r)
    return indexes, {message_id: _facts(rows) for message_id, rows in grouped.items()}


def _address(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return pii.decrypt(token, kind="address")
    except pii.PiiError:
        # An unreadable address must not stop sends; the number's own zones still apply.
        log.warning("gate_address_unreadable")
        return None


def _location(e164: str, row: Mapping[str, Any]) -> RecipientLocation:
    """Where the recipient could be: the number, plus the state staff gave for a held row
    (worker/outbound/held.py, named in the basis with who and when) or else the address."""
    if row["location_source"] == "staff" and row["recipient_state"]:
        location = locate(e164, staff_state=row["recipient_state"])
        return staff_attributed(location, by=row["reviewed_by"], at=row["reviewed_at"])
    return locate(e164, state_from_address(_address(row["address"])))


def _facts(rows: list[dict[str, Any]]) -> ClaimedRow:
    row = rows[0]
    business: ConsentSnapshot | None = None
    station: ConsentSnapshot | None = None
    for r in rows:
        if r["has_state"]:
            if r["state_station_id"] is None:
                business = snapshot_of(r)
            else:
                station = snapshot_of(r)
    e164 = pii.decrypt(row["to_encrypted"], kind="phone")
    facts = SendFacts(
        purpose=SendPurpose(row["purpose"]),
        location=_location(e164, row),
        is_campaign=row["campaign_id"] is not None,
        in_reply_to_event_id=row["in_reply_to_event_id"],
        business=business,
        station=station,
        confirmation_already_sent=bool(row["confirmation_sent"]),
        has_relationship=bool(row["relationship"]),
        marketing_sent_last_24h=int(row["marketing_24h"]),
        undeliverable_code=row["undeliverable"],
        inbox_pending=bool(row["inbox_pending"]),
    )
    return ClaimedRow(row=row, facts=facts, e164=e164, maybe_sent=bool(row["maybe_sent"]))
