"""campaigns: runs, follow-up steps, recipient states, coupon pools and codes, review replies.

Extends the marketing and feedback tables of 0001 for issue 10 (docs/campaigns.md):

- ``marketing.campaigns`` may cover every station (``station_id`` NULL), gains the kind
  ``broadcast``, its purpose (decided from the template, never by the marketer), a schedule
  version bumped by every edit, the missed-run and local-time policies, a coupon pool, a
  public review link and a service-recovery template.
- ``marketing.campaign_steps``: follow-up steps (the review request's reminder) with their own
  template and delay. Schedules live in these rows, never in beat's schedule file.
- ``marketing.campaign_runs``: one row per fire time of a campaign's first step, expanded into
  recipient rows in committed chunks (the cursor), so a crashed tick resumes where it stopped.
- ``marketing.campaign_recipients``: one row per (campaign, step + run, customer), and one per
  number too, whatever its schedule version; the state of a row that reached the outbox is
  read from its outbox row (docs/campaigns.md, "States").
- ``feedback.coupon_pools`` and pool codes in ``feedback.discount_coupons`` (a code waiting in
  its pool has no customer yet): ``available`` -> ``issued`` -> ``redeemed`` | ``expired`` | ``void``.
- ``feedback.customer_reviews``: the number the request went to (blind index), the request's
  recipient row, the raw reply (encrypted) and when it was rated; one review per booking.

Every table here is new or was empty until campaigns existed, so nothing is rewritten.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def _uuid_pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.create_table(
        "coupon_pools",
        _uuid_pk(),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(24), server_default="campaign", nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(8), server_default="", nullable=False),
        sa.Column("code_length", sa.SmallInteger(), nullable=True),
        sa.Column("discount_cents", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("fallback_code", sa.String(32), nullable=True),
        sa.Column("low_stock_threshold", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("low_stock_warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('campaign', 'service_recovery')", name=op.f("ck_coupon_pools_purpose")),
        sa.CheckConstraint("source IN ('generated', 'imported')", name=op.f("ck_coupon_pools_source")),
        sa.CheckConstraint("discount_cents >= 0", name=op.f("ck_coupon_pools_discount_nonnegative")),
        sa.CheckConstraint("valid_days IS NULL OR valid_days > 0", name=op.f("ck_coupon_pools_valid_days_positive")),
        sa.CheckConstraint("low_stock_threshold >= 0", name=op.f("ck_coupon_pools_threshold_nonnegative")),
        sa.ForeignKeyConstraint(
            ["station_id"], ["identity.stations.id"], name=op.f("fk_coupon_pools_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_pools")),
        schema="feedback",
    )
    op.create_index(op.f("ix_coupon_pools_station_id"), "coupon_pools", ["station_id"], schema="feedback")

    # --- campaigns -------------------------------------------------------------------------
    op.alter_column("campaigns", "station_id", nullable=True, schema="marketing")
    op.drop_constraint(op.f("ck_campaigns_kind"), "campaigns", type_="check", schema="marketing")
    op.create_check_constraint(
        op.f("ck_campaigns_kind"), "campaigns", "kind IN ('review_request', 'coupon', 'broadcast')", schema="marketing"
    )
    for column in (
        sa.Column("purpose", sa.String(16), server_default="marketing", nullable=False),
        sa.Column("schedule_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("missed_policy", sa.String(16), server_default="skip", nullable=False),
        sa.Column("missed_window_seconds", sa.Integer(), nullable=True),
        sa.Column("local_passed_policy", sa.String(16), server_default="next_day", nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=True),
        sa.Column("review_link", sa.Text(), nullable=True),
        sa.Column("recovery_template", sa.Text(), nullable=True),
        sa.Column("cooldown_days", sa.Integer(), server_default=sa.text("180"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("campaigns", column, schema="marketing")
    op.create_foreign_key(
        op.f("fk_campaigns_pool_id_coupon_pools"), "campaigns", "coupon_pools", ["pool_id"], ["id"],
        source_schema="marketing", referent_schema="feedback", ondelete="RESTRICT",
    )
    for name, condition in (
        ("ck_campaigns_purpose", "purpose IN ('marketing', 'transactional')"),
        ("ck_campaigns_missed_policy", "missed_policy IN ('skip', 'send_within')"),
        ("ck_campaigns_missed_window",
         "(missed_policy = 'send_within') = (missed_window_seconds IS NOT NULL) "
         "AND (missed_window_seconds IS NULL OR missed_window_seconds > 0)"),
        ("ck_campaigns_local_passed_policy", "local_passed_policy IN ('next_day', 'skip')"),
        ("ck_campaigns_schedule_version_positive", "schedule_version > 0"),
        ("ck_campaigns_cooldown_nonnegative", "cooldown_days >= 0"),
        # A coupon campaign always draws its codes from a pool.
        ("ck_campaigns_coupon_pool", "kind <> 'coupon' OR pool_id IS NOT NULL"),
    ):
        op.create_check_constraint(op.f(name), "campaigns", condition, schema="marketing")

    op.create_table(
        "campaign_steps",
        _uuid_pk(),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("after_seconds", sa.Integer(), nullable=False),
        sa.Column("cancel_on_reply", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.CheckConstraint("step > 1", name=op.f("ck_campaign_steps_follow_up")),
        sa.CheckConstraint("after_seconds > 0", name=op.f("ck_campaign_steps_after_positive")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["marketing.campaigns.id"], name=op.f("fk_campaign_steps_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_steps")),
        sa.UniqueConstraint("campaign_id", "step", name=op.f("uq_campaign_steps_campaign_id_step")),
        schema="marketing",
    )

    op.create_table(
        "campaign_runs",
        _uuid_pk(),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), server_default="expanding", nullable=False),
        sa.Column("missed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("expanded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.CheckConstraint("status IN ('expanding', 'expanded')", name=op.f("ck_campaign_runs_status")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["marketing.campaigns.id"], name=op.f("fk_campaign_runs_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_runs")),
        sa.UniqueConstraint("campaign_id", "run_key", name=op.f("uq_campaign_runs_campaign_id_run_key")),
        schema="marketing",
    )
    op.create_index(
        "ix_campaign_runs_expanding", "campaign_runs", ["created_at"], schema="marketing",
        postgresql_where=sa.text("status = 'expanding'"),
    )

    # --- recipients --------------------------------------------------------------------------
    op.drop_constraint(op.f("uq_campaign_recipients_campaign_id_run_key_customer_id"), "campaign_recipients", type_="unique",
        schema="marketing",
    )
    for column in (
        sa.Column("step", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("schedule_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("booking_id", sa.Uuid(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
    ):
        op.add_column("campaign_recipients", column, schema="marketing")
    op.create_foreign_key(
        op.f("fk_campaign_recipients_station_id_stations"), "campaign_recipients", "stations", ["station_id"], ["id"],
        source_schema="marketing", referent_schema="identity", ondelete="RESTRICT",
    )
    op.create_foreign_key(
        op.f("fk_campaign_recipients_booking_id_bookings"), "campaign_recipients", "bookings", ["booking_id"], ["id"],
        source_schema="marketing", referent_schema="core", ondelete="SET NULL",
    )
    op.create_unique_constraint(
        op.f("uq_campaign_recipients_campaign_id_step_run_key_customer_id"), "campaign_recipients",
        ["campaign_id", "step", "run_key", "customer_id"], schema="marketing",
    )
    op.create_index(
        "uq_campaign_recipients_number", "campaign_recipients", ["campaign_id", "step", "run_key", "to_index"],
        unique=True, schema="marketing", postgresql_where=sa.text("to_index IS NOT NULL"),
    )
    op.create_index(
        "ix_campaign_recipients_due", "campaign_recipients", ["due_at"], schema="marketing",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_campaign_recipients_pending_number", "campaign_recipients", ["to_index"], schema="marketing",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_campaign_recipients_booking_id"), "campaign_recipients", ["booking_id"], schema="marketing"
    )
    for name, condition in (
        ("ck_campaign_recipients_status", "status IN ('pending', 'queued', 'missed', 'skipped', 'cancelled')"),
        # A row is in the outbox exactly when it is queued (its state is then the outbox row's).
        ("ck_campaign_recipients_queued", "(status = 'queued') = (outbound_id IS NOT NULL)"),
        ("ck_campaign_recipients_reason", "status NOT IN ('skipped', 'cancelled', 'missed') OR reason IS NOT NULL"),
        ("ck_campaign_recipients_step_positive", "step > 0"),
    ):
        op.create_check_constraint(op.f(name), "campaign_recipients", condition, schema="marketing")

    # --- coupon codes ------------------------------------------------------------------------
    # A code waiting in an every-station pool has no customer, nor a station, until it is issued.
    op.alter_column("discount_coupons", "customer_id", nullable=True, schema="feedback")
    op.alter_column("discount_coupons", "station_id", nullable=True, schema="feedback")
    for column in (
        sa.Column("pool_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(16), server_default="issued", nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_by", sa.String(200), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
    ):
        op.add_column("discount_coupons", column, schema="feedback")
    op.create_foreign_key(
        op.f("fk_discount_coupons_pool_id_coupon_pools"), "discount_coupons", "coupon_pools", ["pool_id"], ["id"],
        source_schema="feedback", referent_schema="feedback", ondelete="RESTRICT",
    )
    op.create_foreign_key(
        op.f("fk_discount_coupons_recipient_id_campaign_recipients"), "discount_coupons", "campaign_recipients",
        ["recipient_id"], ["id"], source_schema="feedback", referent_schema="marketing", ondelete="SET NULL",
    )
    op.create_unique_constraint(
        op.f("uq_discount_coupons_recipient_id"), "discount_coupons", ["recipient_id"], schema="feedback"
    )
    op.create_index(
        "ix_discount_coupons_available", "discount_coupons", ["pool_id", "code"], schema="feedback",
        postgresql_where=sa.text("status = 'available'"),
    )
    for name, condition in (
        ("ck_discount_coupons_status", "status IN ('available', 'issued', 'redeemed', 'expired', 'void')"),
        ("ck_discount_coupons_assigned", "(status = 'available') = (customer_id IS NULL)"),
        ("ck_discount_coupons_station", "status = 'available' OR station_id IS NOT NULL"),
        ("ck_discount_coupons_redeemed",
         "(status = 'redeemed') = (redeemed_at IS NOT NULL) AND (redeemed_at IS NULL) = (redeemed_by IS NULL)"),
    ):
        op.create_check_constraint(op.f(name), "discount_coupons", condition, schema="feedback")

    # --- reviews -----------------------------------------------------------------------------
    for column in (
        sa.Column("phone_index", sa.LargeBinary(32), nullable=True),
        sa.Column("request_recipient_id", sa.Uuid(), nullable=True),
        sa.Column("reply_encrypted", sa.Text(), nullable=True),
        sa.Column("reply_message_id", sa.Uuid(), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("customer_reviews", column, schema="feedback")
    op.create_foreign_key(
        op.f("fk_customer_reviews_request_recipient_id_campaign_recipients"), "customer_reviews",
        "campaign_recipients", ["request_recipient_id"], ["id"], source_schema="feedback",
        referent_schema="marketing", ondelete="SET NULL",
    )
    op.create_index(
        "uq_customer_reviews_booking", "customer_reviews", ["booking_id"], unique=True, schema="feedback",
        postgresql_where=sa.text("booking_id IS NOT NULL AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_customer_reviews_number", "customer_reviews", ["phone_index"], schema="feedback",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_customer_reviews_escalated", "customer_reviews", ["escalated_at"], schema="feedback",
        postgresql_where=sa.text("status = 'escalated'"),
    )
    # Completed bookings are what the review-request tick looks for.
    op.create_index(
        "ix_bookings_completed", "bookings", ["updated_at"], schema="core",
        postgresql_where=sa.text("status = 'completed' AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_bookings_completed", table_name="bookings", schema="core")
    for name in ("ix_customer_reviews_escalated", "ix_customer_reviews_number", "uq_customer_reviews_booking"):
        op.drop_index(name, table_name="customer_reviews", schema="feedback")
    op.drop_constraint(op.f("fk_customer_reviews_request_recipient_id_campaign_recipients"), "customer_reviews", type_="foreignkey",
        schema="feedback",
    )
    for column in ("deleted_at", "escalated_at", "replied_at", "reply_message_id", "reply_encrypted",
                   "request_recipient_id", "phone_index"):
        op.drop_column("customer_reviews", column, schema="feedback")

    op.execute("DELETE FROM feedback.discount_coupons WHERE customer_id IS NULL")
    for name in ("ck_discount_coupons_station", "ck_discount_coupons_redeemed", "ck_discount_coupons_assigned",
                 "ck_discount_coupons_status"):
        op.drop_constraint(op.f(name), "discount_coupons", type_="check", schema="feedback")
    op.drop_index("ix_discount_coupons_available", table_name="discount_coupons", schema="feedback")
    op.drop_constraint(op.f("uq_discount_coupons_recipient_id"), "discount_coupons", type_="unique", schema="feedback")
    op.drop_constraint(op.f("fk_discount_coupons_recipient_id_campaign_recipients"), "discount_coupons", type_="foreignkey",
        schema="feedback",
    )
    op.drop_constraint(op.f("fk_discount_coupons_pool_id_coupon_pools"), "discount_coupons", type_="foreignkey",
                       schema="feedback")
    for column in ("updated_at", "voided_at", "redeemed_by", "issued_at", "recipient_id", "status", "pool_id"):
        op.drop_column("discount_coupons", column, schema="feedback")
    op.alter_column("discount_coupons", "customer_id", nullable=False, schema="feedback")
    op.alter_column("discount_coupons", "station_id", nullable=False, schema="feedback")

    for name in ("ck_campaign_recipients_step_positive", "ck_campaign_recipients_reason",
                 "ck_campaign_recipients_queued", "ck_campaign_recipients_status"):
        op.drop_constraint(op.f(name), "campaign_recipients", type_="check", schema="marketing")
    for name in ("ix_campaign_recipients_booking_id", "ix_campaign_recipients_pending_number",
                 "ix_campaign_recipients_due", "uq_campaign_recipients_number"):
        op.drop_index(name, table_name="campaign_recipients", schema="marketing")
    op.drop_constraint(op.f("uq_campaign_recipients_campaign_id_step_run_key_customer_id"), "campaign_recipients", type_="unique",
        schema="marketing",
    )
    op.drop_constraint(op.f("fk_campaign_recipients_booking_id_bookings"), "campaign_recipients", type_="foreignkey",
                       schema="marketing")
    op.drop_constraint(op.f("fk_campaign_recipients_station_id_stations"), "campaign_recipients", type_="foreignkey",
                       schema="marketing")
    for column in ("updated_at", "reason", "due_at", "booking_id", "station_id", "schedule_version", "step"):
        op.drop_column("campaign_recipients", column, schema="marketing")
    op.create_unique_constraint(
        op.f("uq_campaign_recipients_campaign_id_run_key_customer_id"), "campaign_recipients",
        ["campaign_id", "run_key", "customer_id"], schema="marketing",
    )

    op.drop_index("ix_campaign_runs_expanding", table_name="campaign_runs", schema="marketing")
    op.drop_table("campaign_runs", schema="marketing")
    op.drop_table("campaign_steps", schema="marketing")
    for name in ("ck_campaigns_coupon_pool", "ck_campaigns_cooldown_nonnegative",
                 "ck_campaigns_schedule_version_positive", "ck_campaigns_local_passed_policy",
                 "ck_campaigns_missed_window", "ck_campaigns_missed_policy", "ck_campaigns_purpose"):
        op.drop_constraint(op.f(name), "campaigns", type_="check", schema="marketing")
    op.drop_constraint(op.f("fk_campaigns_pool_id_coupon_pools"), "campaigns", type_="foreignkey", schema="marketing")
    for column in ("cancelled_at", "completed_at", "paused_at", "started_at", "cooldown_days", "recovery_template",
                   "review_link", "pool_id", "local_passed_policy", "missed_window_seconds", "missed_policy",
                   "schedule_version", "purpose"):
        op.drop_column("campaigns", column, schema="marketing")
    op.execute("DELETE FROM marketing.campaigns WHERE kind = 'broadcast' OR station_id IS NULL")
    op.drop_constraint(op.f("ck_campaigns_kind"), "campaigns", type_="check", schema="marketing")
    op.create_check_constraint(
        op.f("ck_campaigns_kind"), "campaigns", "kind IN ('review_request', 'coupon')", schema="marketing"
    )
    op.alter_column("campaigns", "station_id", nullable=False, schema="marketing")
    op.drop_index(op.f("ix_coupon_pools_station_id"), table_name="coupon_pools", schema="feedback")
    op.drop_table("coupon_pools", schema="feedback")
