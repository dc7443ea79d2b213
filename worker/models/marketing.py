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
    SmallInteger,
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
        CheckConstraint("kind IN ('review_request', 'coupon', 'broadcast')", name="kind"),
        CheckConstraint(
            "status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')",
            name="status",
        ),
        CheckConstraint("purpose IN ('marketing', 'transactional')", name="purpose"),
        CheckConstraint("missed_policy IN ('skip', 'send_within')", name="missed_policy"),
        CheckConstraint(
            "(missed_policy = 'send_within') = (missed_window_seconds IS NOT NULL) "
            "AND (missed_window_seconds IS NULL OR missed_window_seconds > 0)",
            name="missed_window",
        ),
        CheckConstraint("local_passed_policy IN ('next_day', 'skip')", name="local_passed_policy"),
        CheckConstraint("schedule_version > 0", name="schedule_version_positive"),
        CheckConstraint("cooldown_days >= 0", name="cooldown_nonnegative"),
        CheckConstraint("kind <> 'coupon' OR pool_id IS NOT NULL", name="coupon_pool"),
        Index("ix_campaigns_next_run", "next_run_at", postgresql_where=text("status IN ('scheduled', 'running')")),
        {"schema": "marketing"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # NULL: every station (each customer is texted from their own station).
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    # The first step's template (follow-up steps: CampaignStep).
    template: Mapped[str] = mapped_column(Text)
    # Decided from the kind and the template (compliance/templates.py), never by the marketer.
    purpose: Mapped[str] = mapped_column(String(16), server_default="marketing")
    # {"type": "all_customers"}
    audience: Mapped[dict[str, Any]]
    # compliance/campaign_schedule.py: {"type": "once" | "recurring" | "local" | "relative", ...}
    schedule: Mapped[dict[str, Any]]
    # Bumped by every edit: new outbox rows carry it in their idempotency key.
    schedule_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    missed_policy: Mapped[str] = mapped_column(String(16), server_default="skip")
    missed_window_seconds: Mapped[int | None] = mapped_column(Integer)
    local_passed_policy: Mapped[str] = mapped_column(String(16), server_default="next_day")
    pool_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("feedback.coupon_pools.id", ondelete="RESTRICT"))
    review_link: Mapped[str | None] = mapped_column(Text)
    recovery_template: Mapped[str | None] = mapped_column(Text)
    cooldown_days: Mapped[int] = mapped_column(Integer, server_default=text("180"))
    next_run_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


class CampaignStep(Base):
    """A follow-up step (step 2 onwards): sent ``after_seconds`` after the previous step's due time."""

    __tablename__ = "campaign_steps"
    __table_args__ = (
        UniqueConstraint("campaign_id", "step"),
        CheckConstraint("step > 1", name="follow_up"),
        CheckConstraint("after_seconds > 0", name="after_positive"),
        {"schema": "marketing"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("marketing.campaigns.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(SmallInteger)
    template: Mapped[str] = mapped_column(Text)
    after_seconds: Mapped[int] = mapped_column(Integer)
    # Any reply from the recipient cancels this step if it has not gone yet.
    cancel_on_reply: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CampaignRun(Base):
    """One fire time of a campaign's first step, expanded into recipient rows chunk by chunk."""

    __tablename__ = "campaign_runs"
    __table_args__ = (
        UniqueConstraint("campaign_id", "run_key"),
        CheckConstraint("status IN ('expanding', 'expanded')", name="status"),
        Index("ix_campaign_runs_expanding", "created_at", postgresql_where=text("status = 'expanding'")),
        {"schema": "marketing"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("marketing.campaigns.id", ondelete="CASCADE"))
    run_key: Mapped[str] = mapped_column(String(64))
    fire_at: Mapped[datetime]
    schedule_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="expanding")
    # Fired while the worker was down, past the campaign's missed-run policy: rows are "missed".
    missed: Mapped[bool] = mapped_column(server_default=text("false"))
    # The last customer id expanded (customers are expanded in id order).
    cursor: Mapped[uuid.UUID | None]
    expanded: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


RECIPIENT_STATUSES = ("pending", "queued", "missed", "skipped", "cancelled")


class CampaignRecipient(Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (
        # One row per recipient per step and run, whatever the schedule version: a fan-out
        # retried after a crash, or an edit, adds nobody twice.
        UniqueConstraint("campaign_id", "step", "run_key", "customer_id"),
        # And one per number: two customer rows with one number (two stations) get one text.
        Index(
            "uq_campaign_recipients_number", "campaign_id", "step", "run_key", "to_index",
            unique=True, postgresql_where=text("to_index IS NOT NULL"),
        ),
        Index("ix_campaign_recipients_due", "due_at", postgresql_where=text("status = 'pending'")),
        Index("ix_campaign_recipients_pending_number", "to_index", postgresql_where=text("status = 'pending'")),
        CheckConstraint("status IN ('pending', 'queued', 'missed', 'skipped', 'cancelled')", name="status"),
        CheckConstraint("(status = 'queued') = (outbound_id IS NOT NULL)", name="queued"),
        CheckConstraint("status NOT IN ('skipped', 'cancelled', 'missed') OR reason IS NOT NULL", name="reason"),
        CheckConstraint("step > 0", name="step_positive"),
        {"schema": "marketing"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("marketing.campaigns.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    # Which run of the step: a recurring occurrence ("20261207T150000Z"), a booking id, or "once".
    run_key: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.customers.id", ondelete="CASCADE"), index=True)
    station_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("identity.stations.id", ondelete="RESTRICT"))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.bookings.id", ondelete="SET NULL"), index=True
    )
    to_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    schedule_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    due_at: Mapped[datetime | None]
    outbound_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.outbound_messages.id", ondelete="SET NULL"), index=True
    )
    # pending | queued (in the outbox: the state is the outbox row's) | missed | skipped | cancelled
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class CustomerReview(Base):
    __tablename__ = "customer_reviews"
    __table_args__ = (
        Index(
            "uq_customer_reviews_booking", "booking_id", unique=True,
            postgresql_where=text("booking_id IS NOT NULL AND deleted_at IS NULL"),
        ),
        # Replies are matched by number: open requests, and closed ones (a late reply is recorded).
        Index("ix_customer_reviews_number", "phone_index", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_customer_reviews_escalated", "escalated_at", postgresql_where=text("status = 'escalated'")),
        {"schema": "feedback"},
    )

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
    # The number the request went to (blind index): replies from it are matched here.
    phone_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    request_recipient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("marketing.campaign_recipients.id", ondelete="SET NULL")
    )
    # The raw reply, encrypted like every stored body (worker.pii, kind "review_reply").
    reply_encrypted: Mapped[str | None] = mapped_column(Text)
    reply_message_id: Mapped[uuid.UUID | None]
    replied_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


class CouponPool(Base):
    __tablename__ = "coupon_pools"
    __table_args__ = (
        CheckConstraint("purpose IN ('campaign', 'service_recovery')", name="purpose"),
        CheckConstraint("source IN ('generated', 'imported')", name="source"),
        CheckConstraint("discount_cents >= 0", name="discount_nonnegative"),
        CheckConstraint("valid_days IS NULL OR valid_days > 0", name="valid_days_positive"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_nonnegative"),
        {"schema": "feedback"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # NULL: usable by every station.
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(24), server_default="campaign")
    source: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(8), server_default="")
    code_length: Mapped[int | None] = mapped_column(SmallInteger)
    discount_cents: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    description: Mapped[str | None] = mapped_column(Text)
    # An issued code expires this many days after it is issued (NULL: the code's own expiry).
    valid_days: Mapped[int | None] = mapped_column(Integer)
    # Exhaustion policy: NULL skips the recipient (pool_empty); a code here is sent instead.
    fallback_code: Mapped[str | None] = mapped_column(String(32))
    low_stock_threshold: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    low_stock_warned_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]


COUPON_STATUSES = ("available", "issued", "redeemed", "expired", "void")


class DiscountCoupon(Base):
    __tablename__ = "discount_coupons"
    __table_args__ = (
        CheckConstraint("discount_cents >= 0", name="discount_nonnegative"),
        CheckConstraint("status IN ('available', 'issued', 'redeemed', 'expired', 'void')", name="status"),
        CheckConstraint("(status = 'available') = (customer_id IS NULL)", name="assigned"),
        CheckConstraint("status = 'available' OR station_id IS NOT NULL", name="station"),
        CheckConstraint(
            "(status = 'redeemed') = (redeemed_at IS NOT NULL) AND (redeemed_at IS NULL) = (redeemed_by IS NULL)",
            name="redeemed",
        ),
        Index("ix_discount_coupons_available", "pool_id", "code", postgresql_where=text("status = 'available'")),
        {"schema": "feedback"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # NULL only while a code of an every-station pool waits to be issued.
    station_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), index=True
    )
    # NULL while the code waits in its pool ("available").
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("core.customers.id", ondelete="RESTRICT"), index=True
    )
    review_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("feedback.customer_reviews.id", ondelete="SET NULL"), unique=True
    )
    pool_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("feedback.coupon_pools.id", ondelete="RESTRICT"))
    # The campaign recipient the code went to: at most one code per recipient.
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("marketing.campaign_recipients.id", ondelete="SET NULL"), unique=True
    )
    # Unique across pools: `msgworker coupon redeem CODE` names no pool.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    discount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="issued")
    expires_on: Mapped[date | None]
    issued_at: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
    redeemed_by: Mapped[str | None] = mapped_column(String(200))
    voided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
