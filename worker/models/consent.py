"""compliance: the append-only, hash-chained consent ledger, its projection, the review queue.

consent_events is append-only: a trigger (migration 0001) refuses UPDATE, DELETE and TRUNCATE.
Each event carries the hash of the previous event for the same number (prev_hash), so
``msgworker ledger verify`` can name the first altered or missing link.

consent_state is the current state per (number, scope), changed in the same transaction
as the event that changes it, under the per-number advisory lock (worker.locks) that the
send path also takes: a send decided after an opt-out commits always sees it.

Scope: station_id NULL means business-wide; otherwise that one station.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, created_at, uuid_pk

EVENT_KINDS = (
    "opt_out",
    "opt_in",
    "marketing_consent",
    "marketing_consent_revoked",
    "help_request",
    "review_opened",
    "review_resolved",
    "carrier_opt_out",
    "carrier_opt_in",
)
EVENT_SOURCES = (
    "sms_keyword",
    "sms_phrase",
    "twilio_opt_out_type",
    "carrier_error",
    "web_form",
    "api",
    "staff",
    "import",
    "review_deadline",
)
CONSENT_PURPOSES = ("marketing", "transactional", "all")


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint("purpose IN ('marketing', 'transactional', 'all')", name="purpose"),
        Index("ix_consent_events_phone_seq", "phone_index", "seq"),
        Index("ix_consent_events_occurred_at", "occurred_at"),
        {"schema": "compliance"},
    )

    # Insertion order; the chain per number follows it.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4, server_default=text("gen_random_uuid()"))
    phone_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    phone_encrypted: Mapped[str] = mapped_column(Text)
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    # Provider message id, raw body, matched rule, classifier version; disclosure text
    # version / URL / IP for web consent; the staff user for staff changes.
    evidence: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = created_at()
    # Makes carrier signals and redelivered webhooks record once ("sms:SM...:opt_out").
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    prev_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ConsentState(Base):
    __tablename__ = "consent_state"
    __table_args__ = (
        # PostgreSQL 15: one business-wide row (station_id NULL) per number.
        UniqueConstraint("phone_index", "station_id", postgresql_nulls_not_distinct=True),
        {"schema": "compliance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    phone_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    phone_encrypted: Mapped[str] = mapped_column(Text)
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True
    )
    # Revoked for every purpose (transactional too).
    opted_out: Mapped[bool] = mapped_column(server_default=text("false"))
    # Revoked for marketing only (a category reply, or a marketing-only staff change).
    marketing_opted_out: Mapped[bool] = mapped_column(server_default=text("false"))
    opted_out_at: Mapped[datetime | None]
    opt_out_event_id: Mapped[uuid.UUID | None]
    # Prior express written consent for marketing is on record (and not revoked).
    marketing_consent: Mapped[bool] = mapped_column(server_default=text("false"))
    marketing_consent_event_id: Mapped[uuid.UUID | None]
    marketing_consent_at: Mapped[datetime | None]
    # An ambiguous message awaits a person: marketing is paused meanwhile.
    pending_review: Mapped[bool] = mapped_column(server_default=text("false"))
    last_event_id: Mapped[uuid.UUID | None]
    last_event_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_event_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = created_at()


class ReviewItem(Base):
    """An ambiguous inbound message a person must read: revocation or not?"""

    __tablename__ = "review_items"
    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'resolved_opt_out', 'resolved_not_opt_out', 'expired_opt_out')",
            name="status",
        ),
        Index("ix_review_items_open_deadline", "deadline_at", postgresql_where=text("status = 'open'")),
        Index("ix_review_items_phone", "phone_index"),
        {"schema": "compliance"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    phone_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    phone_encrypted: Mapped[str] = mapped_column(Text)
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.messages.id", ondelete="SET NULL"), index=True
    )
    classification: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32), server_default="open")
    deadline_at: Mapped[datetime]
    opened_event_id: Mapped[uuid.UUID | None]
    resolved_event_id: Mapped[uuid.UUID | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    resolved_at: Mapped[datetime | None]
