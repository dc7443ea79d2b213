"""core: customers, bookings, message threads and messages.

Phone, email and address are stored only encrypted (worker.pii) with keyed blind indexes
for lookup. Threads and messages follow the existing database's shape; the one deviation
is message_threads.channel, widened from VARCHAR(8) so "instagram" fits.
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

from worker.models.base import Base, created_at, updated_at, uuid_pk

LIVE = text("deleted_at IS NULL")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # Find-or-create by phone within a station is race-free because of these.
        Index(
            "uq_customers_station_phone_live",
            "station_id",
            "phone_index",
            unique=True,
            postgresql_where=LIVE,
        ),
        Index(
            "uq_customers_station_email_live",
            "station_id",
            "email_index",
            unique=True,
            postgresql_where=LIVE,
        ),
        Index("ix_customers_live_station", "station_id", postgresql_where=LIVE),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    phone_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    email_encrypted: Mapped[str | None] = mapped_column(Text)
    email_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    address_encrypted: Mapped[str | None] = mapped_column(Text)
    # Where the customer came from: "sms_inbound", "facebook", "import", "staff".
    source: Mapped[str] = mapped_column(String(32), server_default="staff")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


class Chef(Base):
    __tablename__ = "chefs"
    __table_args__ = ({"schema": "core"},)

    id: Mapped[uuid.UUID] = uuid_pk()
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    deleted_at: Mapped[datetime | None]


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("party_adults > 0", name="party_adults_positive"),
        CheckConstraint("party_kids >= 0", name="party_kids_nonnegative"),
        CheckConstraint("deposit_due_cents >= 0", name="deposit_nonnegative"),
        CheckConstraint("total_due_cents >= deposit_due_cents", name="total_covers_deposit"),
        CheckConstraint("status IN ('pending', 'confirmed', 'completed', 'cancelled', 'no_show')", name="status"),
        Index("ix_bookings_date", "date"),
        Index("ix_bookings_status", "status"),
        Index("ix_bookings_live_station", "station_id", postgresql_where=LIVE),
        # What the review-request tick looks for (worker/campaigns/reviews.py).
        Index(
            "ix_bookings_completed", "updated_at", postgresql_where=text("status = 'completed' AND deleted_at IS NULL")
        ),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.customers.id", ondelete="RESTRICT"), index=True)
    chef_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.chefs.id", ondelete="SET NULL"), index=True)
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    # Event start, timezone-aware; "date" mirrors the existing schema's index.
    date: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    party_adults: Mapped[int] = mapped_column(Integer)
    party_kids: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    deposit_due_cents: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total_due_cents: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


class MessageThread(Base):
    __tablename__ = "message_threads"
    __table_args__ = (
        CheckConstraint("channel IN ('sms', 'facebook', 'instagram')", name="channel"),
        CheckConstraint("status IN ('open', 'closed', 'escalated', 'archived')", name="status"),
        # At most one open thread per (customer, channel, station): concurrent first
        # messages from a new number converge on one thread.
        Index(
            "uq_message_threads_open",
            "customer_id",
            "channel",
            "station_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND status = 'open'"),
        ),
        Index(
            "ix_message_threads_external",
            "channel",
            "external_thread_id",
            "station_id",
            postgresql_where=LIVE,
        ),
        # The admin API's keyset list, newest first, all stations or one (migration 0005).
        Index("ix_message_threads_recent", "last_message_at", "id"),
        Index("ix_message_threads_station_recent", "station_id", "last_message_at", "id"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.customers.id", ondelete="RESTRICT"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_thread_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(9), server_default="open")
    assigned_agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    ai_mode: Mapped[bool] = mapped_column(server_default=text("false"))
    last_message_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        # A provider id (Twilio MessageSid, Meta mid) is unique per channel: the ingest
        # insert is ON CONFLICT DO NOTHING on this.
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_messages_thread_created", "thread_id", "created_at"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    thread_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.message_threads.id", ondelete="RESTRICT"), index=True)
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))
    provider_message_id: Mapped[str] = mapped_column(String(255))
    body: Mapped[str | None] = mapped_column(Text)
    # [{"url": ..., "content_type": ...}, ...]
    media: Mapped[list[Any] | None]
    num_segments: Mapped[int | None] = mapped_column(Integer)
    # Provider extras kept for evidence (Twilio From* geo fields, OptOutType, ...).
    meta: Mapped[dict[str, Any] | None]
    inbox_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.webhook_inbox.id", ondelete="SET NULL"), index=True
    )
    outbound_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.outbound_messages.id", ondelete="SET NULL"), index=True
    )
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    deleted_at: Mapped[datetime | None]
