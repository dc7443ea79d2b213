"""core.webhook_inbox and core.delivery_events: what providers posted, stored before ack.

The raw request body is kept encrypted (it carries phone numbers and message text); the
inbox row is the durable record that a webhook was received, so the receiver never
answers 2xx for a webhook that has no row here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, created_at, uuid_pk

INBOX_PROVIDERS = ("twilio_sms", "twilio_status", "meta")
INBOX_STATUSES = ("pending", "processed", "failed")


class WebhookInbox(Base):
    __tablename__ = "webhook_inbox"
    __table_args__ = (
        CheckConstraint("provider IN ('twilio_sms', 'twilio_status', 'meta')", name="provider"),
        CheckConstraint("status IN ('pending', 'processed', 'failed')", name="status"),
        # Idempotent on the provider's identity of the event (MessageSid; for status
        # callbacks MessageSid:MessageStatus; for Meta the body digest).
        UniqueConstraint("provider", "provider_event_id"),
        # The sweeper's scan: only pending rows, oldest first.
        Index("ix_webhook_inbox_pending", "received_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_inbox_failed", "received_at", postgresql_where=text("status = 'failed'")),
        # The send gate's lookup: is a text from this number still waiting (worker/outbound/facts.py)?
        Index("ix_webhook_inbox_pending_from", "from_index", postgresql_where=text("status = 'pending'")),
        # ... and is an inbound SMS whose sender is not known waiting (stored before migration
        # 0007 or by a receiver that predates it)? Then every send waits; normally empty.
        Index(
            "ix_webhook_inbox_pending_unknown_sender",
            "received_at",
            postgresql_where=text("status = 'pending' AND provider = 'twilio_sms' AND from_index IS NULL"),
        ),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    provider: Mapped[str] = mapped_column(String(16))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    # I-Twilio-Idempotency-Token and similar delivery ids, for tracing retries.
    delivery_id: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(128))
    payload_encrypted: Mapped[str] = mapped_column(Text)
    # The SMS sender's blind index (worker.phone.PhoneNumber.index), computed by the receiver,
    # so that the send gate can defer texts to a number whose message is not yet applied
    # (migration 0007). NULL for other providers, for a From that is not a number (ingest fails
    # that row at once) and for SMS stored before the column existed: while such an SMS is
    # pending, the gate defers every send (worker/outbound/facts.py).
    from_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    received_at: Mapped[datetime] = created_at()
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    # When an ingest run last claimed the row: a 30 s lease that keeps other runs off it
    # (worker/ingest/drain.py); attempts is counted at the same moment.
    enqueued_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]


class DeliveryEvent(Base):
    """One Twilio status callback, kept as evidence even when it changes nothing."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        UniqueConstraint("provider_sid", "status"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    outbound_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.outbound_messages.id", ondelete="SET NULL"), index=True
    )
    provider_sid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[dict[str, Any] | None]
    inbox_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.webhook_inbox.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = created_at()
