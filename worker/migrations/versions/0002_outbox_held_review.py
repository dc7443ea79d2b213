"""outbox held review: where staff say a held recipient is, who said it and when.

The send gate holds marketing and campaign texts to a number it cannot place (toll-free,
invalid, no address: ``zone_unknown``), because quiet hours are judged at the recipient's
location (COMPLIANCE.md §5). ``msgworker send release`` lets a person supply that location
(a US state) or cancel the text; these columns keep the answer on the row, where the gate
reads it at its next decision (worker/gate_facts.py), and the basis can name its source.

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


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(_TABLE, sa.Column("recipient_state", sa.String(length=2), nullable=True), schema="core")
    op.add_column(_TABLE, sa.Column("location_source", sa.String(length=16), nullable=True), schema="core")
    op.add_column(_TABLE, sa.Column("reviewed_by", sa.String(length=200), nullable=True), schema="core")
    op.add_column(_TABLE, sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True), schema="core")
    op.add_column(_TABLE, sa.Column("review_note", sa.Text(), nullable=True), schema="core")
    for name, condition in _CHECKS.items():
        op.create_check_constraint(op.f(name), _TABLE, condition, schema="core", postgresql_not_valid=True)
    with op.get_context().autocommit_block():  # commits the ALTERs above first
        for name in _CHECKS:
            op.execute(f"ALTER TABLE core.{_TABLE} VALIDATE CONSTRAINT {name}")
        op.create_index(
            "ix_outbound_messages_held",
            _TABLE,
            ["created_at"],
            unique=False,
            schema="core",
            postgresql_where=sa.text(_HELD_WHERE),
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_outbound_messages_held", table_name=_TABLE, schema="core", postgresql_where=sa.text(_HELD_WHERE))
    for name in reversed(_CHECKS):
        op.drop_constraint(op.f(name), _TABLE, type_="check", schema="core")
    for column in ("review_note", "reviewed_at", "reviewed_by", "location_source", "recipient_state"):
        op.drop_column(_TABLE, column, schema="core")
