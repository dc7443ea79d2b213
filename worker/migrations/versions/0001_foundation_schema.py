"""foundation schema: every schema and table the worker uses.

Follows the business's existing database for names, enums and checks, and adds
the worker's own tables (webhook inbox, outbox, consent ledger). consent_events is made
append-only in the database itself by a trigger, so neither a bug nor a careless operator
can rewrite the ledger through SQL without first disabling the trigger (which
``msgworker ledger verify`` would then catch through the hash chain).

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:46:05.956648

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SCHEMAS = ("identity", "core", "compliance", "marketing", "feedback")

APPEND_ONLY_FN = """
CREATE FUNCTION compliance.refuse_consent_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'compliance.consent_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def upgrade() -> None:
    """Upgrade schema."""
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_event_id", sa.String(length=255), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("payload_encrypted", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "provider IN ('twilio_sms', 'twilio_status', 'meta')", name=op.f("ck_webhook_inbox_provider")
        ),
        sa.CheckConstraint("status IN ('pending', 'processed', 'failed')", name=op.f("ck_webhook_inbox_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        sa.UniqueConstraint("provider", "provider_event_id", name=op.f("uq_webhook_inbox_provider_provider_event_id")),
        schema="core",
    )
    op.create_index(
        "ix_webhook_inbox_failed",
        "webhook_inbox",
        ["received_at"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("status = 'failed'"),
    )
    op.create_index(
        "ix_webhook_inbox_pending",
        "webhook_inbox",
        ["received_at"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("brand_name", sa.String(length=200), nullable=False),
        sa.Column("help_text", sa.Text(), nullable=True),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f("ck_stations_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("code", name=op.f("uq_stations_code")),
        schema="identity",
    )
    op.create_index("ix_stations_status", "stations", ["status"], unique=False, schema="identity")
    op.create_table(
        "consent_events",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("phone_encrypted", sa.Text(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("purpose IN ('marketing', 'transactional', 'all')", name=op.f("ck_consent_events_purpose")),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_consent_events_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_consent_events")),
        sa.UniqueConstraint("id", name=op.f("uq_consent_events_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_consent_events_idempotency_key")),
        schema="compliance",
    )
    op.create_index(
        "ix_consent_events_occurred_at", "consent_events", ["occurred_at"], unique=False, schema="compliance"
    )
    op.create_index(
        "ix_consent_events_phone_seq", "consent_events", ["phone_index", "seq"], unique=False, schema="compliance"
    )
    op.create_index(
        op.f("ix_consent_events_station_id"), "consent_events", ["station_id"], unique=False, schema="compliance"
    )
    op.create_table(
        "consent_state",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("phone_encrypted", sa.Text(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("opted_out", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("marketing_opted_out", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opt_out_event_id", sa.Uuid(), nullable=True),
        sa.Column("marketing_consent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("marketing_consent_event_id", sa.Uuid(), nullable=True),
        sa.Column("marketing_consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_review", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_event_id", sa.Uuid(), nullable=True),
        sa.Column("last_event_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_event_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_consent_state_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_state")),
        sa.UniqueConstraint(
            "phone_index",
            "station_id",
            name=op.f("uq_consent_state_phone_index_station_id"),
            postgresql_nulls_not_distinct=True,
        ),
        schema="compliance",
    )
    op.create_index(
        op.f("ix_consent_state_station_id"), "consent_state", ["station_id"], unique=False, schema="compliance"
    )
    op.create_table(
        "chefs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["identity.stations.id"], name=op.f("fk_chefs_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chefs")),
        schema="core",
    )
    op.create_index(op.f("ix_chefs_station_id"), "chefs", ["station_id"], unique=False, schema="core")
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("phone_encrypted", sa.Text(), nullable=True),
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column("email_encrypted", sa.Text(), nullable=True),
        sa.Column("email_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column("address_encrypted", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=32), server_default="staff", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["identity.stations.id"], name=op.f("fk_customers_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        schema="core",
    )
    op.create_index(
        "ix_customers_live_station",
        "customers",
        ["station_id"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(op.f("ix_customers_station_id"), "customers", ["station_id"], unique=False, schema="core")
    op.create_index(
        "uq_customers_station_email_live",
        "customers",
        ["station_id", "email_index"],
        unique=True,
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "uq_customers_station_phone_live",
        "customers",
        ["station_id", "phone_index"],
        unique=True,
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "station_senders",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("messaging_service_sid", sa.String(length=34), nullable=True),
        sa.Column("rate_per_second", sa.Double(), server_default=sa.text("1"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'facebook', 'instagram')", name=op.f("ck_station_senders_channel")),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_station_senders_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_senders")),
        sa.UniqueConstraint("channel", "address", name=op.f("uq_station_senders_channel_address")),
        schema="identity",
    )
    op.create_index(
        op.f("ix_station_senders_station_id"), "station_senders", ["station_id"], unique=False, schema="identity"
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("audience", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('review_request', 'coupon')", name=op.f("ck_campaigns_kind")),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')",
            name=op.f("ck_campaigns_status"),
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["identity.stations.id"], name=op.f("fk_campaigns_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        schema="marketing",
    )
    op.create_index(
        "ix_campaigns_next_run",
        "campaigns",
        ["next_run_at"],
        unique=False,
        schema="marketing",
        postgresql_where=sa.text("status IN ('scheduled', 'running')"),
    )
    op.create_index(op.f("ix_campaigns_station_id"), "campaigns", ["station_id"], unique=False, schema="marketing")
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column(
            "role",
            sa.Enum("SUPER_ADMIN", "ADMIN", "CUSTOMER_SUPPORT", "STATION_MANAGER", name="user_role"),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("assigned_station_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_station_id"],
            ["identity.stations.id"],
            name=op.f("fk_users_assigned_station_id_stations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index(op.f("ix_users_assigned_station_id"), "users", ["assigned_station_id"], unique=False)
    op.create_index("ix_users_role", "users", ["role"], unique=False)
    op.create_table(
        "bookings",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("chef_id", sa.Uuid(), nullable=True),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("party_adults", sa.Integer(), nullable=False),
        sa.Column("party_kids", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("deposit_due_cents", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_due_cents", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'completed', 'cancelled', 'no_show')", name=op.f("ck_bookings_status")
        ),
        sa.CheckConstraint("deposit_due_cents >= 0", name=op.f("ck_bookings_deposit_nonnegative")),
        sa.CheckConstraint("party_adults > 0", name=op.f("ck_bookings_party_adults_positive")),
        sa.CheckConstraint("party_kids >= 0", name=op.f("ck_bookings_party_kids_nonnegative")),
        sa.CheckConstraint("total_due_cents >= deposit_due_cents", name=op.f("ck_bookings_total_covers_deposit")),
        sa.ForeignKeyConstraint(
            ["chef_id"], ["core.chefs.id"], name=op.f("fk_bookings_chef_id_chefs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["core.customers.id"], name=op.f("fk_bookings_customer_id_customers"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["identity.stations.id"], name=op.f("fk_bookings_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
        schema="core",
    )
    op.create_index(op.f("ix_bookings_chef_id"), "bookings", ["chef_id"], unique=False, schema="core")
    op.create_index(op.f("ix_bookings_customer_id"), "bookings", ["customer_id"], unique=False, schema="core")
    op.create_index("ix_bookings_date", "bookings", ["date"], unique=False, schema="core")
    op.create_index(
        "ix_bookings_live_station",
        "bookings",
        ["station_id"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(op.f("ix_bookings_station_id"), "bookings", ["station_id"], unique=False, schema="core")
    op.create_index("ix_bookings_status", "bookings", ["status"], unique=False, schema="core")
    op.create_table(
        "message_threads",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_thread_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=9), server_default="open", nullable=False),
        sa.Column("assigned_agent_id", sa.Uuid(), nullable=True),
        sa.Column("ai_mode", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'facebook', 'instagram')", name=op.f("ck_message_threads_channel")),
        sa.CheckConstraint(
            "status IN ('open', 'closed', 'escalated', 'archived')", name=op.f("ck_message_threads_status")
        ),
        sa.ForeignKeyConstraint(
            ["assigned_agent_id"],
            ["users.id"],
            name=op.f("fk_message_threads_assigned_agent_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core.customers.id"],
            name=op.f("fk_message_threads_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_message_threads_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_threads")),
        schema="core",
    )
    op.create_index(
        op.f("ix_message_threads_assigned_agent_id"),
        "message_threads",
        ["assigned_agent_id"],
        unique=False,
        schema="core",
    )
    op.create_index(
        op.f("ix_message_threads_customer_id"), "message_threads", ["customer_id"], unique=False, schema="core"
    )
    op.create_index(
        "ix_message_threads_external",
        "message_threads",
        ["channel", "external_thread_id", "station_id"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        op.f("ix_message_threads_station_id"), "message_threads", ["station_id"], unique=False, schema="core"
    )
    op.create_index(
        "uq_message_threads_open",
        "message_threads",
        ["customer_id", "channel", "station_id"],
        unique=True,
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL AND status = 'open'"),
    )
    op.create_table(
        "station_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_station_users_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_station_users_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "station_id", name=op.f("pk_station_users")),
        schema="identity",
    )
    op.create_index(
        op.f("ix_station_users_station_id"), "station_users", ["station_id"], unique=False, schema="identity"
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.Enum("VIEW", "CREATE", "UPDATE", "DELETE", name="audit_action"), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("old_values", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new_values", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_audit_logs_station_id_stations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_logs_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    op.create_index("ix_audit_logs_created_at", "audit_logs", ["created_at"], unique=False)
    op.create_index("ix_audit_logs_resource", "audit_logs", ["resource_type", "resource_id"], unique=False)
    op.create_index(op.f("ix_audit_logs_station_id"), "audit_logs", ["station_id"], unique=False)
    op.create_index(op.f("ix_audit_logs_user_id"), "audit_logs", ["user_id"], unique=False)
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), server_default="sms", nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("thread_id", sa.Uuid(), nullable=True),
        sa.Column("to_encrypted", sa.Text(), nullable=False),
        sa.Column("to_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("in_reply_to_event_id", sa.Uuid(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("gate_decision", sa.String(length=16), nullable=True),
        sa.Column("gate_reason", sa.String(length=64), nullable=True),
        sa.Column("gate_basis", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("delivery_status", sa.String(length=32), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'facebook', 'instagram')", name=op.f("ck_outbound_messages_channel")),
        sa.CheckConstraint(
            "purpose IN ('transactional', 'marketing', 'compliance')", name=op.f("ck_outbound_messages_purpose")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'blocked', 'deferred', 'cancelled', 'unknown')",
            name=op.f("ck_outbound_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["marketing.campaigns.id"],
            name=op.f("fk_outbound_messages_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core.customers.id"],
            name=op.f("fk_outbound_messages_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["identity.station_senders.id"],
            name=op.f("fk_outbound_messages_sender_id_station_senders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_outbound_messages_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["core.message_threads.id"],
            name=op.f("fk_outbound_messages_thread_id_message_threads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbound_messages_idempotency_key")),
        sa.UniqueConstraint("provider_sid", name=op.f("uq_outbound_messages_provider_sid")),
        schema="core",
    )
    op.create_index(
        op.f("ix_outbound_messages_campaign_id"), "outbound_messages", ["campaign_id"], unique=False, schema="core"
    )
    op.create_index(
        op.f("ix_outbound_messages_customer_id"), "outbound_messages", ["customer_id"], unique=False, schema="core"
    )
    op.create_index(
        "ix_outbound_messages_due",
        "outbound_messages",
        ["not_before"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("status IN ('pending', 'deferred')"),
    )
    op.create_index(
        op.f("ix_outbound_messages_in_reply_to_event_id"),
        "outbound_messages",
        ["in_reply_to_event_id"],
        unique=False,
        schema="core",
    )
    op.create_index(
        op.f("ix_outbound_messages_sender_id"), "outbound_messages", ["sender_id"], unique=False, schema="core"
    )
    op.create_index(
        op.f("ix_outbound_messages_station_id"), "outbound_messages", ["station_id"], unique=False, schema="core"
    )
    op.create_index(
        op.f("ix_outbound_messages_thread_id"), "outbound_messages", ["thread_id"], unique=False, schema="core"
    )
    op.create_index(
        "ix_outbound_messages_to_created", "outbound_messages", ["to_index", "created_at"], unique=False, schema="core"
    )
    op.create_index(
        "ix_outbound_messages_unknown",
        "outbound_messages",
        ["updated_at"],
        unique=False,
        schema="core",
        postgresql_where=sa.text("status = 'unknown'"),
    )
    op.create_table(
        "customer_reviews",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("booking_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column(
            "rating",
            sa.Enum("great", "good", "okay", "could_be_better", name="review_rating", schema="feedback"),
            nullable=True,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "submitted", "escalated", "resolved", "archived", name="review_status", schema="feedback"
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["core.bookings.id"],
            name=op.f("fk_customer_reviews_booking_id_bookings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["marketing.campaigns.id"],
            name=op.f("fk_customer_reviews_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core.customers.id"],
            name=op.f("fk_customer_reviews_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_customer_reviews_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_reviews")),
        schema="feedback",
    )
    op.create_index(
        op.f("ix_customer_reviews_booking_id"), "customer_reviews", ["booking_id"], unique=False, schema="feedback"
    )
    op.create_index(
        op.f("ix_customer_reviews_campaign_id"), "customer_reviews", ["campaign_id"], unique=False, schema="feedback"
    )
    op.create_index(
        op.f("ix_customer_reviews_customer_id"), "customer_reviews", ["customer_id"], unique=False, schema="feedback"
    )
    op.create_index(
        op.f("ix_customer_reviews_station_id"), "customer_reviews", ["station_id"], unique=False, schema="feedback"
    )
    op.create_table(
        "undeliverable_numbers",
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("outbound_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["core.outbound_messages.id"],
            name=op.f("fk_undeliverable_numbers_outbound_id_outbound_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("phone_index", name=op.f("pk_undeliverable_numbers")),
        schema="compliance",
    )
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("outbound_id", sa.Uuid(), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("inbox_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["core.webhook_inbox.id"],
            name=op.f("fk_delivery_events_inbox_id_webhook_inbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["core.outbound_messages.id"],
            name=op.f("fk_delivery_events_outbound_id_outbound_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_events")),
        sa.UniqueConstraint("provider_sid", "status", name=op.f("uq_delivery_events_provider_sid_status")),
        schema="core",
    )
    op.create_index(op.f("ix_delivery_events_inbox_id"), "delivery_events", ["inbox_id"], unique=False, schema="core")
    op.create_index(
        op.f("ix_delivery_events_outbound_id"), "delivery_events", ["outbound_id"], unique=False, schema="core"
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("thread_id", sa.Uuid(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("provider_message_id", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("media", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("num_segments", sa.Integer(), nullable=True),
        sa.Column("meta", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("inbox_id", sa.Uuid(), nullable=True),
        sa.Column("outbound_id", sa.Uuid(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f("ck_messages_direction")),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["core.webhook_inbox.id"],
            name=op.f("fk_messages_inbox_id_webhook_inbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["core.outbound_messages.id"],
            name=op.f("fk_messages_outbound_id_outbound_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["identity.stations.id"], name=op.f("fk_messages_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["core.message_threads.id"],
            name=op.f("fk_messages_thread_id_message_threads"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("channel", "provider_message_id", name=op.f("uq_messages_channel_provider_message_id")),
        schema="core",
    )
    op.create_index(op.f("ix_messages_inbox_id"), "messages", ["inbox_id"], unique=False, schema="core")
    op.create_index(op.f("ix_messages_outbound_id"), "messages", ["outbound_id"], unique=False, schema="core")
    op.create_index(op.f("ix_messages_station_id"), "messages", ["station_id"], unique=False, schema="core")
    op.create_index("ix_messages_thread_created", "messages", ["thread_id", "created_at"], unique=False, schema="core")
    op.create_index(op.f("ix_messages_thread_id"), "messages", ["thread_id"], unique=False, schema="core")
    op.create_table(
        "send_attempts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("outbound_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["core.outbound_messages.id"],
            name=op.f("fk_send_attempts_outbound_id_outbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_attempts")),
        schema="core",
    )
    op.create_index(op.f("ix_send_attempts_outbound_id"), "send_attempts", ["outbound_id"], unique=False, schema="core")
    op.create_table(
        "discount_coupons",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("discount_cents", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("discount_cents >= 0", name=op.f("ck_discount_coupons_discount_nonnegative")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core.customers.id"],
            name=op.f("fk_discount_coupons_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["feedback.customer_reviews.id"],
            name=op.f("fk_discount_coupons_review_id_customer_reviews"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_discount_coupons_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discount_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_discount_coupons_code")),
        sa.UniqueConstraint("review_id", name=op.f("uq_discount_coupons_review_id")),
        schema="feedback",
    )
    op.create_index(
        op.f("ix_discount_coupons_customer_id"), "discount_coupons", ["customer_id"], unique=False, schema="feedback"
    )
    op.create_index(
        op.f("ix_discount_coupons_station_id"), "discount_coupons", ["station_id"], unique=False, schema="feedback"
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("run_key", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("to_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column("outbound_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["marketing.campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["core.customers.id"],
            name=op.f("fk_campaign_recipients_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["core.outbound_messages.id"],
            name=op.f("fk_campaign_recipients_outbound_id_outbound_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint(
            "campaign_id", "run_key", "customer_id", name=op.f("uq_campaign_recipients_campaign_id_run_key_customer_id")
        ),
        schema="marketing",
    )
    op.create_index(
        op.f("ix_campaign_recipients_campaign_id"),
        "campaign_recipients",
        ["campaign_id"],
        unique=False,
        schema="marketing",
    )
    op.create_index(
        op.f("ix_campaign_recipients_customer_id"),
        "campaign_recipients",
        ["customer_id"],
        unique=False,
        schema="marketing",
    )
    op.create_index(
        op.f("ix_campaign_recipients_outbound_id"),
        "campaign_recipients",
        ["outbound_id"],
        unique=False,
        schema="marketing",
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("phone_encrypted", sa.Text(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("classification", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="open", nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_event_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_event_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'resolved_opt_out', 'resolved_not_opt_out', 'expired_opt_out')",
            name=op.f("ck_review_items_status"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["core.messages.id"], name=op.f("fk_review_items_message_id_messages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["identity.stations.id"],
            name=op.f("fk_review_items_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        schema="compliance",
    )
    op.create_index(
        op.f("ix_review_items_message_id"), "review_items", ["message_id"], unique=False, schema="compliance"
    )
    op.create_index(
        "ix_review_items_open_deadline",
        "review_items",
        ["deadline_at"],
        unique=False,
        schema="compliance",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_review_items_phone", "review_items", ["phone_index"], unique=False, schema="compliance")
    op.create_index(
        op.f("ix_review_items_station_id"), "review_items", ["station_id"], unique=False, schema="compliance"
    )
    op.execute(APPEND_ONLY_FN)
    op.execute(
        "CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON "
        "compliance.consent_events FOR EACH ROW EXECUTE FUNCTION "
        "compliance.refuse_consent_event_change()"
    )
    op.execute(
        "CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON "
        "compliance.consent_events FOR EACH STATEMENT EXECUTE FUNCTION "
        "compliance.refuse_consent_event_change()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER IF EXISTS consent_events_no_truncate ON compliance.consent_events")
    op.execute("DROP TRIGGER IF EXISTS consent_events_append_only ON compliance.consent_events")
    op.execute("DROP FUNCTION IF EXISTS compliance.refuse_consent_event_change()")
    op.drop_index(op.f("ix_review_items_station_id"), table_name="review_items", schema="compliance")
    op.drop_index("ix_review_items_phone", table_name="review_items", schema="compliance")
    op.drop_index(
        "ix_review_items_open_deadline",
        table_name="review_items",
        schema="compliance",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_index(op.f("ix_review_items_message_id"), table_name="review_items", schema="compliance")
    op.drop_table("review_items", schema="compliance")
    op.drop_index(op.f("ix_campaign_recipients_outbound_id"), table_name="campaign_recipients", schema="marketing")
    op.drop_index(op.f("ix_campaign_recipients_customer_id"), table_name="campaign_recipients", schema="marketing")
    op.drop_index(op.f("ix_campaign_recipients_campaign_id"), table_name="campaign_recipients", schema="marketing")
    op.drop_table("campaign_recipients", schema="marketing")
    op.drop_index(op.f("ix_discount_coupons_station_id"), table_name="discount_coupons", schema="feedback")
    op.drop_index(op.f("ix_discount_coupons_customer_id"), table_name="discount_coupons", schema="feedback")
    op.drop_table("discount_coupons", schema="feedback")
    op.drop_index(op.f("ix_send_attempts_outbound_id"), table_name="send_attempts", schema="core")
    op.drop_table("send_attempts", schema="core")
    op.drop_index(op.f("ix_messages_thread_id"), table_name="messages", schema="core")
    op.drop_index("ix_messages_thread_created", table_name="messages", schema="core")
    op.drop_index(op.f("ix_messages_station_id"), table_name="messages", schema="core")
    op.drop_index(op.f("ix_messages_outbound_id"), table_name="messages", schema="core")
    op.drop_index(op.f("ix_messages_inbox_id"), table_name="messages", schema="core")
    op.drop_table("messages", schema="core")
    op.drop_index(op.f("ix_delivery_events_outbound_id"), table_name="delivery_events", schema="core")
    op.drop_index(op.f("ix_delivery_events_inbox_id"), table_name="delivery_events", schema="core")
    op.drop_table("delivery_events", schema="core")
    op.drop_table("undeliverable_numbers", schema="compliance")
    op.drop_index(op.f("ix_customer_reviews_station_id"), table_name="customer_reviews", schema="feedback")
    op.drop_index(op.f("ix_customer_reviews_customer_id"), table_name="customer_reviews", schema="feedback")
    op.drop_index(op.f("ix_customer_reviews_campaign_id"), table_name="customer_reviews", schema="feedback")
    op.drop_index(op.f("ix_customer_reviews_booking_id"), table_name="customer_reviews", schema="feedback")
    op.drop_table("customer_reviews", schema="feedback")
    op.drop_index(
        "ix_outbound_messages_unknown",
        table_name="outbound_messages",
        schema="core",
        postgresql_where=sa.text("status = 'unknown'"),
    )
    op.drop_index("ix_outbound_messages_to_created", table_name="outbound_messages", schema="core")
    op.drop_index(op.f("ix_outbound_messages_thread_id"), table_name="outbound_messages", schema="core")
    op.drop_index(op.f("ix_outbound_messages_station_id"), table_name="outbound_messages", schema="core")
    op.drop_index(op.f("ix_outbound_messages_sender_id"), table_name="outbound_messages", schema="core")
    op.drop_index(op.f("ix_outbound_messages_in_reply_to_event_id"), table_name="outbound_messages", schema="core")
    op.drop_index(
        "ix_outbound_messages_due",
        table_name="outbound_messages",
        schema="core",
        postgresql_where=sa.text("status IN ('pending', 'deferred')"),
    )
    op.drop_index(op.f("ix_outbound_messages_customer_id"), table_name="outbound_messages", schema="core")
    op.drop_index(op.f("ix_outbound_messages_campaign_id"), table_name="outbound_messages", schema="core")
    op.drop_table("outbound_messages", schema="core")
    op.drop_index(op.f("ix_audit_logs_user_id"), table_name="audit_logs")
    op.drop_index(op.f("ix_audit_logs_station_id"), table_name="audit_logs")
    op.drop_index("ix_audit_logs_resource", table_name="audit_logs")
    op.drop_index("ix_audit_logs_created_at", table_name="audit_logs")
    op.drop_table("audit_logs")
    op.drop_index(op.f("ix_station_users_station_id"), table_name="station_users", schema="identity")
    op.drop_table("station_users", schema="identity")
    op.drop_index(
        "uq_message_threads_open",
        table_name="message_threads",
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL AND status = 'open'"),
    )
    op.drop_index(op.f("ix_message_threads_station_id"), table_name="message_threads", schema="core")
    op.drop_index(
        "ix_message_threads_external",
        table_name="message_threads",
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(op.f("ix_message_threads_customer_id"), table_name="message_threads", schema="core")
    op.drop_index(op.f("ix_message_threads_assigned_agent_id"), table_name="message_threads", schema="core")
    op.drop_table("message_threads", schema="core")
    op.drop_index("ix_bookings_status", table_name="bookings", schema="core")
    op.drop_index(op.f("ix_bookings_station_id"), table_name="bookings", schema="core")
    op.drop_index(
        "ix_bookings_live_station", table_name="bookings", schema="core", postgresql_where=sa.text("deleted_at IS NULL")
    )
    op.drop_index("ix_bookings_date", table_name="bookings", schema="core")
    op.drop_index(op.f("ix_bookings_customer_id"), table_name="bookings", schema="core")
    op.drop_index(op.f("ix_bookings_chef_id"), table_name="bookings", schema="core")
    op.drop_table("bookings", schema="core")
    op.drop_index("ix_users_role", table_name="users")
    op.drop_index(op.f("ix_users_assigned_station_id"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_campaigns_station_id"), table_name="campaigns", schema="marketing")
    op.drop_index(
        "ix_campaigns_next_run",
        table_name="campaigns",
        schema="marketing",
        postgresql_where=sa.text("status IN ('scheduled', 'running')"),
    )
    op.drop_table("campaigns", schema="marketing")
    op.drop_index(op.f("ix_station_senders_station_id"), table_name="station_senders", schema="identity")
    op.drop_table("station_senders", schema="identity")
    op.drop_index(
        "uq_customers_station_phone_live",
        table_name="customers",
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(
        "uq_customers_station_email_live",
        table_name="customers",
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(op.f("ix_customers_station_id"), table_name="customers", schema="core")
    op.drop_index(
        "ix_customers_live_station",
        table_name="customers",
        schema="core",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("customers", schema="core")
    op.drop_index(op.f("ix_chefs_station_id"), table_name="chefs", schema="core")
    op.drop_table("chefs", schema="core")
    op.drop_index(op.f("ix_consent_state_station_id"), table_name="consent_state", schema="compliance")
    op.drop_table("consent_state", schema="compliance")
    op.drop_index(op.f("ix_consent_events_station_id"), table_name="consent_events", schema="compliance")
    op.drop_index("ix_consent_events_phone_seq", table_name="consent_events", schema="compliance")
    op.drop_index("ix_consent_events_occurred_at", table_name="consent_events", schema="compliance")
    op.drop_table("consent_events", schema="compliance")
    op.drop_index("ix_stations_status", table_name="stations", schema="identity")
    op.drop_table("stations", schema="identity")
    op.drop_index(
        "ix_webhook_inbox_pending",
        table_name="webhook_inbox",
        schema="core",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_webhook_inbox_failed",
        table_name="webhook_inbox",
        schema="core",
        postgresql_where=sa.text("status = 'failed'"),
    )
    op.drop_table("webhook_inbox", schema="core")
    for enum_name in ("feedback.review_status", "feedback.review_rating", "audit_action", "user_role"):
        op.execute(f"DROP TYPE IF EXISTS {enum_name}")
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema}")
