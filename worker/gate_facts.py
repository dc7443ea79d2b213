"""Reading the send gate's facts from the database, under the per-number lock.

compliance.gate is pure; this module is its only reader. The caller must already hold
``worker.locks.lock_number`` for the recipient in the current transaction: consent
recording takes the same lock, so the consent rows read here cannot change until the
decision commits (worker/sending.py explains why that makes the race safe).

Two queries after the lock: the consent rows that cover the send (business-wide and the
station's), and one row of scalars (undeliverable code, earlier confirmation, marketing
count in the last 24 h, relationship, the customer's address). Each sub-query is an
indexed lookup, so a decision costs a few hundred microseconds of database time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.gate import GatePolicy, SendFacts, SendPurpose
from compliance.recipient import locate
from compliance.us_states import state_from_address
from worker import pii
from worker.consent.state import covering_rows
from worker.settings import Settings, get_settings

__all__ = ["FactsRequest", "gate_policy", "load_facts"]

# Rows that count as "went (or may have gone) out": for the frequency cap and for the
# one-confirmation rule. "unknown" counts: it may have been accepted.
_SCALARS = text(
    """
    SELECT
      (SELECT u.error_code FROM compliance.undeliverable_numbers u WHERE u.phone_index = :idx) AS undeliverable,
      CASE WHEN CAST(:reply_to AS uuid) IS NULL THEN false ELSE EXISTS (
        SELECT 1 FROM core.outbound_messages o
        WHERE o.in_reply_to_event_id = CAST(:reply_to AS uuid) AND o.id <> :id AND o.purpose = 'compliance'
          AND o.status IN ('sending', 'sent', 'delivered', 'undelivered', 'unknown')) END AS confirmation_sent,
      CASE WHEN :need_cap THEN (
        SELECT count(*) FROM core.outbound_messages o
        WHERE o.to_index = :idx AND o.purpose = 'marketing' AND o.id <> :id
          AND o.status IN ('sending', 'sent', 'delivered', 'undelivered', 'unknown')
          AND o.decided_at > CAST(:since AS timestamptz)) ELSE 0 END AS marketing_24h,
      CASE WHEN :need_relationship THEN EXISTS (
        SELECT 1 FROM core.customers c
        WHERE c.station_id = :station AND c.phone_index = :idx AND c.deleted_at IS NULL
          AND (EXISTS (SELECT 1 FROM core.bookings b WHERE b.customer_id = c.id AND b.deleted_at IS NULL)
               OR EXISTS (SELECT 1 FROM core.message_threads t JOIN core.messages m ON m.thread_id = t.id
                          WHERE t.customer_id = c.id AND m.direction = 'inbound'))) ELSE true END AS relationship,
      (SELECT c.address_encrypted FROM core.customers c
        WHERE c.station_id = :station AND c.phone_index = :idx AND c.deleted_at IS NULL
          AND c.address_encrypted IS NOT NULL
        ORDER BY c.created_at LIMIT 1) AS address
    """
)


@dataclass(frozen=True, slots=True)
class FactsRequest:
    """The outbox row's fields the facts depend on."""

    id: uuid.UUID
    station_id: uuid.UUID
    to_index: bytes
    to_encrypted: str
    purpose: str
    campaign_id: uuid.UUID | None
    in_reply_to_event_id: uuid.UUID | None


def gate_policy(settings: Settings | None = None) -> GatePolicy:
    s = settings or get_settings()
    return GatePolicy(
        marketing_cap_per_24h=s.OUTBOUND_MARKETING_CAP_PER_24H,
        quiet_hours_for_transactional=s.OUTBOUND_QUIET_HOURS_TRANSACTIONAL,
        quiet_hours_for_compliance=s.OUTBOUND_QUIET_HOURS_COMPLIANCE,
    )


def load_facts(session: Session, req: FactsRequest, *, now: datetime) -> tuple[SendFacts, str]:
    """(facts, recipient E.164). The caller holds lock_number(req.to_index)."""
    purpose = SendPurpose(req.purpose)
    business, station = covering_rows(session, req.to_index, req.station_id)
    row = session.execute(
        _SCALARS,
        {
            "idx": req.to_index,
            "id": req.id,
            "station": req.station_id,
            "reply_to": req.in_reply_to_event_id,
            "need_cap": purpose is SendPurpose.MARKETING,
            "since": now - timedelta(hours=24),
            "need_relationship": purpose is SendPurpose.TRANSACTIONAL,
        },
    ).one()
    e164 = pii.decrypt(req.to_encrypted, kind="phone")
    address = pii.decrypt(row.address, kind="address") if row.address else None
    facts = SendFacts(
        purpose=purpose,
        location=locate(e164, state_from_address(address)),
        is_campaign=req.campaign_id is not None,
        in_reply_to_event_id=req.in_reply_to_event_id,
        business=business,
        station=station,
        confirmation_already_sent=bool(row.confirmation_sent),
        has_relationship=bool(row.relationship),
        marketing_sent_last_24h=int(row.marketing_24h),
        undeliverable_code=row.undeliverable,
    )
    return facts, e164
