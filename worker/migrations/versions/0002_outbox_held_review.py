"""outbox held review: where staff say a held recipient is, who said it and when.

The send gate holds marketing and campaign texts to a number it cannot place (toll-free,
invalid, no address: ``zone_unknown``), because quiet hours are judged at the recipient's
location (docs/compliance.md#phone-numbers-and-time-zones). ``msgworker send release`` lets a
person supply that location (a US state) or cancel the text; these columns keep the answer on
the row, where the gate reads it at its next decision (worker/outbound/facts.py), and the basis
can name its source.

Every column is nullable without a default, so adding them rewrites nothing. The outbox is
the busiest table the send path writes, so nothing here scans it while holding the ALTER's
exclusive lock: the checks are added NOT VALID (existing rows only hold NULLs in the new
columns) and validated after that transaction commits, and the partial index (the few rows
waiting for a person, so ``msgworker send held`` does not scan the outbox) is built
CONCURRENTLY; both of those let sends go on meanwhile.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 22:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "outbound_messages"
_CHECKS = {
    "ck_outbound_messages_recipient_state": "recipient_state ~ '^[A-Z]{2}$'",
    "ck_outbound_messages_location_source": "location_source IN ('staff')",
    "ck_outbound_messages_located": "(recipient_state IS NULL) = (location_source IS NULL)",
    "ck_outbound_messages_reviewed": (
        "(reviewed_by IS NULL) = (reviewed_at IS NULL) "
        "AND (location_source IS DISTINCT FROM 'staff' OR reviewed_at IS NOT NULL)"
    ),
}
_HELD_WHERE = "status = 'blocked' AND gate_reason = 'zone_unknown' AND reviewed_at IS NULL"


_COLUMNS = (
    ("recipient_state", "varchar(2)"),
    ("location_source", "varchar(16)"),
    ("reviewed_by", "varchar(200)"),
    ("reviewed_at", "timestamptz"),
    ("review_note", "text"),
)


def upgrade() -> None:
    """Upgrade schema. Every step is idempotent: the autocommit block below commits the ALTER
    before the slow steps, so a run that fails in them is re-run from the start."""
    # Do not queue behind a long transaction while holding up every outbox write behind us.
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(
        f"ALTER TABLE core.{_TABLE} "
        + ", ".join(f"ADD COLUMN IF NOT EXISTS {name} {kind}" for name, kind in _COLUMNS)
    )
    existing = set(
        op.get_bind().execute(
            sa.text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)"),
            {"t": f"core.{_TABLE}"},
        ).scalars()
    )
    for name, condition in _CHECKS.items():
        if name not in existing:
            op.create_check_constraint(op.f(name), _TABLE, condition, schema="core", postgresql_not_valid=True)
    with op.get_context().autocommit_block():  # commits the ALTERs above first
        for name in _CHECKS:
            op.execute(f"ALTER TABLE core.{_TABLE} VALIDATE CONSTRAINT {name}")  # a no-op once valid
        # A concurrent build that was interrupted leaves an invalid index behind: rebuild it.
        invalid = op.get_bind().execute(
            sa.text(
                "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('core.ix_outbound_messages_held') "
                "AND NOT indisvalid"
            )
        ).first()
        if invalid:
            op.execute("DROP INDEX CONCURRENTLY IF EXISTS core.ix_outbound_messages_held")
        op.create_index(
            "ix_outbound_messages_held",
            _TABLE,
            ["created_at"],
            unique=False,
            schema="core",
            postgresql_where=sa.text(_HELD_WHERE),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_outbound_messages_held", table_name=_TABLE, schema="core", postgresql_where=sa.text(_HELD_WHERE))
    for name in reversed(_CHECKS):
        op.drop_constraint(op.f(name), _TABLE, type_="check", schema="core")
    for column, _kind in reversed(_COLUMNS):
        op.drop_column(_TABLE, column, schema="core")
