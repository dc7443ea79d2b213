"""marketing and feedback: campaigns, their recipients, reviews and coupons.

Campaign schedules live here, not in beat's config, so a campaign can be created,
paused or cancelled without restarting anything.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Enum,
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


class ReviewRating(enum.StrEnum):
    GREAT = "great"
    GOOD = "good"
    OKAY = "okay"
    COULD_BE_BETTER = "could_be_better"


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    ARCHIVED = "archived"


review_rating = Enum(
    ReviewRating, name="review_rating", schema="feedback", values_callable=lambda e: [m.value for m in e]
)
review_status = Enum(
    ReviewStatus, name="review_status", schema="feedback", values_callable=lambda e: [m.value for m in e]
)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("kind IN ('review_request', 'coupon')", name="kind"),
        CheckConstraint(
            "status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')",
            name="status",
        ),
        Index("ix_campaigns_next_run", "next_run_at", postgresql_where=text("status IN ('scheduled', 'running')")),
        {"schema": "marketing"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    template: Mapped[str] = mapped_column(Text)
    # {"type": "all_customers" | "bookings_completed_since", ...}
    audience: Mapped[dict[str, Any]]
    # {"type": "once" | "recurring" | "recipient_local", "at": ..., "every": ..., ...}
    schedule: Mapped[dict[str, Any]]
    next_run_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


class CampaignRecipient(Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (
        # One row per recipient per run: fan-out retried after a crash adds nobody twice.
        UniqueConstraint("campaign_id", "run_key", "customer_id"),
        {"schema": "marketing"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("marketing.campaigns.id", ondelete="CASCADE"), index=True)
    # Identifies one run of a recurring campaign ("2026-11-25").
    run_key: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.customers.id", ondelete="CASCADE"), index=True)
    to_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    outbound_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.outbound_messages.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    created_at: Mapped[datetime] = created_at()


class CustomerReview(Base):
    __tablename__ = "customer_reviews"
    __table_args__ = ({"schema": "feedback"},)

    id: Mapped[uuid.UUID] = uuid_pk()
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.bookings.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.customers.id", ondelete="RESTRICT"), index=True)
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("marketing.campaigns.id", ondelete="SET NULL"), index=True
    )
    rating: Mapped[ReviewRating | None] = mapped_column(review_rating)
    status: Mapped[ReviewStatus] = mapped_column(review_status, server_default="pending")
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class DiscountCoupon(Base):
    __tablename__ = "discount_coupons"
    __table_args__ = (
        CheckConstraint("discount_cents >= 0", name="discount_nonnegative"),
        {"schema": "feedback"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.customers.id", ondelete="RESTRICT"), index=True)
    review_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("feedback.customer_reviews.id", ondelete="SET NULL"), unique=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    discount_cents: Mapped[int] = mapped_column(Integer)
    expires_on: Mapped[date | None]
    redeemed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
