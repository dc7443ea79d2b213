"""outbox segments: each text's SMS segment count, for pacing the release tick by segments.

Twilio's MPS is segments per second (docs/compliance.md#throughput-and-segments) and the send
path's token bucket charges a text its segments (worker/outbound/rate_limit.py); the release
tick, which hands each sender about two seconds' worth of texts per tick
(worker/outbound/release.py), must count the same unit, or long texts bounce off the bucket
tick after tick. The count is a pure function of the body, which never
changes on an outbox row, so it is computed once at enqueue (compliance/segments.py) rather
than in SQL at every tick.

NOT NULL with a constant default is a catalog-only change (PostgreSQL 11+): existing rows read
as one segment without a rewrite, and nothing scans the outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 23:40:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("ALTER TABLE core.outbound_messages ADD COLUMN IF NOT EXISTS segments smallint NOT NULL DEFAULT 1")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("outbound_messages", "segments", schema="core")
