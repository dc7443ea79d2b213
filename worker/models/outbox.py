"""core.outbound_messages (the outbox) and core.send_attempts.

Every outbound text is a row here before anything is sent. The gate's decision, its
reason and its basis (consent event ids) are committed on the row before the provider is
called, so each send can be justified afterwards; each provider call is a SendAttempt
written first, so a redelivered task can see that an earlier attempt may have sent.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from compliance.gate import SendPurpose
from worker.models.base import Base, created_at, updated_at, uuid_pk


def sql_list(values: Iterable[enum.StrEnum]) -> str:
    """Enum values as a SQL list, ``('pending', 'queued')``; the values are constants of this
    code, never input, so they are written into the statement."""
    return "(" + ", ".join(f"'{value.value}'" for value in values) + ")"


class StatusGroup(tuple["OutboxStatus", ...]):
    """Some outbox statuses, spelled once: an ORM filter takes the group as it is
    (``OutboundMessage.status.in_(OutboxStatus.CANCELLABLE)``), raw SQL takes ``.sql``."""

    __slots__ = ()

    @property
    def sql(self) -> str:
        return sql_list(self)


class OutboxStatus(enum.StrEnum):
    """An outbox row's status; the value is what the ``status`` column stores."""

    PENDING = "pending"  # waiting for not_before / the release tick
    QUEUED = "queued"  # released to the send task
    SENDING = "sending"  # decision committed, provider call in flight
    SENT = "sent"  # provider accepted (has provider_sid)
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # provider refused permanently
    BLOCKED = "blocked"  # gate said no
    DEFERRED = "deferred"  # gate said later; not_before moved
    CANCELLED = "cancelled"  # e.g. the number opted out while this waited
    UNKNOWN = "unknown"  # may or may not have been accepted; the reconciler settles it

    # Groups, set below the class (an enum's body makes every value a member).
    ALL: ClassVar[StatusGroup]
    # Waiting for their time: the release tick takes them once not_before has passed.
    WAITING: ClassVar[StatusGroup]
    # Not yet handed to the provider: an opt-out or a cancelled campaign can still stop them.
    CANCELLABLE: ClassVar[StatusGroup]
    # Went, or may have gone, out ("unknown" may have been accepted): what the frequency cap
    # and the one-confirmation rule count.
    WENT_OUT: ClassVar[StatusGroup]


OutboxStatus.ALL = StatusGroup(OutboxStatus)
OutboxStatus.WAITING = StatusGroup((OutboxStatus.PENDING, OutboxStatus.DEFERRED))
OutboxStatus.CANCELLABLE = StatusGroup((OutboxStatus.PENDING, OutboxStatus.QUEUED, OutboxStatus.DEFERRED))
OutboxStatus.WENT_OUT = StatusGroup(
    (OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED, OutboxStatus.UNKNOWN)
)


def _by_value(kind: type[enum.StrEnum]) -> Enum:
    """A string column holding the enum's values (VARCHAR, no type of its own in the database;
    the table's CHECK constraint lists the values), loaded as enum members."""
    return Enum(
        kind,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"
    __table_args__ = (
        CheckConstraint(f"purpose IN {sql_list(SendPurpose)}", name="purpose"),
        CheckConstraint(f"status IN {OutboxStatus.ALL.sql}", name="status"),
        CheckConstraint("channel IN ('sms', 'facebook', 'instagram')", name="channel"),
        # The release tick's scan.
        Index(
            "ix_outbound_messages_due",
            "not_before",
            postgresql_where=text(f"status IN {OutboxStatus.WAITING.sql}"),
        ),
        Index("ix_outbound_messages_to_created", "to_index", "created_at"),
        Index("ix_outbound_messages_unknown", "updated_at", postgresql_where=text("status = 'unknown'")),
        # Held for review (worker/outbound/held.py): rows the gate could not place, until a person acts.
        CheckConstraint("recipient_state ~ '^[A-Z]{2}$'", name="recipient_state"),
        CheckConstraint("location_source IN ('staff')", name="location_source"),
        CheckConstraint("(recipient_state IS NULL) = (location_source IS NULL)", name="located"),
        CheckConstraint(
            "(reviewed_by IS NULL) = (reviewed_at IS NULL) "
            "AND (location_source IS DISTINCT FROM 'staff' OR reviewed_at IS NOT NULL)",
            name="reviewed",
        ),
        Index(
            "ix_outbound_messages_held",
            "created_at",
            postgresql_where=text("status = 'blocked' AND gate_reason = 'zone_unknown' AND reviewed_at IS NULL"),
        ),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    sender_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.station_senders.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16), server_default="sms")
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.customers.id", ondelete="SET NULL"), index=True
    )
    thread_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.message_threads.id", ondelete="SET NULL"), index=True
    )
    to_encrypted: Mapped[str] = mapped_column(Text)
    # Blind index of the E.164 recipient: consent, caps and cancellations key on it.
    to_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    body: Mapped[str] = mapped_column(Text)
    # SMS segments of the body (compliance/segments.py), set at enqueue: the release tick
    # paces each sender in segments, the unit of Twilio's MPS and of the token bucket.
    segments: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    purpose: Mapped[SendPurpose] = mapped_column(_by_value(SendPurpose))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("marketing.campaigns.id", ondelete="SET NULL"), index=True
    )
    # For a compliance confirmation: the consent event it confirms.
    in_reply_to_event_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    not_before: Mapped[datetime] = mapped_column(server_default=text("now()"))
    status: Mapped[OutboxStatus] = mapped_column(_by_value(OutboxStatus), server_default=OutboxStatus.PENDING.value)
    gate_decision: Mapped[str | None] = mapped_column(String(16))
    gate_reason: Mapped[str | None] = mapped_column(String(64))
    gate_basis: Mapped[dict[str, Any] | None]
    decided_at: Mapped[datetime | None]
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_by: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    # Where staff said the recipient is (a USPS state code), for a row the gate held as
    # zone_unknown; the gate places the recipient there at its next decision.
    recipient_state: Mapped[str | None] = mapped_column(String(2))
    # Who supplied recipient_state: "staff" (msgworker send release).
    location_source: Mapped[str | None] = mapped_column(String(16))
    # The person who released or cancelled a held row, when, and why.
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class SendAttempt(Base):
    __tablename__ = "send_attempts"
    __table_args__ = ({"schema": "core"},)

    id: Mapped[uuid.UUID] = uuid_pk()
    outbound_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("core.outbound_messages.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None]
    # "accepted", "refused", "retryable", "timeout" (maybe accepted), "reconciled_*"
    outcome: Mapped[str | None] = mapped_column(String(32))
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)


class UndeliverableNumber(Base):
    """Numbers a provider told us cannot take texts (21211, 21614, 30005, 30006)."""

    __tablename__ = "undeliverable_numbers"
    __table_args__ = ({"schema": "compliance"},)

    phone_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    error_code: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime] = created_at()
    outbound_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.outbound_messages.id", ondelete="SET NULL"))
