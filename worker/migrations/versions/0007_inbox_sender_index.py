"""inbox sender index: the SMS sender's blind index on each inbox row, for the send gate.

Once the receiver has answered 2xx to a STOP, no later text may go to that number, yet the STOP
waits in ``core.webhook_inbox`` until ingest applies it: after an outage, due marketing could be
released before the inbox is drained. The receiver now stores the sender's blind index
(``worker.phone.PhoneNumber.index``, the key every table looks a number up by) with each inbound
SMS, and the gate's claim statement (worker/outbound/facts.py) asks whether a row from the
number is still pending; if so the text is deferred a moment and decided again once ingest has
applied it (docs/outbound.md, ``inbox_pending``).

The column is nullable without a default: adding it rewrites nothing. Rows stored before it
(and SMS stored by a receiver still running the previous release during a rolling deploy) keep
NULL: their sender is unknown, so while any such SMS is pending the gate defers *every* send
(the second index below, empty in normal operation, answers that in one probe); once ingest
has applied or failed them, sends go on. Status callbacks and Meta events keep NULL and match
no lookup. Both indexes cover only pending rows (the inbox's few live ones, not its history)
and are built CONCURRENTLY, so webhooks keep being stored meanwhile. Every step is
idempotent: the autocommit block commits the ALTER before the index builds, so a run that
fails in them is re-run from the start.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> (column, partial index condition); the same as worker/models/inbox.py.
_INDEXES = {
    "ix_webhook_inbox_pending_from": ("from_index", "status = 'pending'"),
    "ix_webhook_inbox_pending_unknown_sender": (
        "received_at",
        "status = 'pending' AND provider = 'twilio_sms' AND from_index IS NULL",
    ),
}


def upgrade() -> None:
    """Upgrade schema."""
    # The receiver writes this table on every webhook: do not queue behind a long transaction
    # while holding up every insert behind us.
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("ALTER TABLE core.webhook_inbox ADD COLUMN IF NOT EXISTS from_index bytea")
    with op.get_context().autocommit_block():  # commits the ALTER above first
        for name, (column, where) in _INDEXES.items():
            # A concurrent build that was interrupted leaves an invalid index behind: rebuild it.
            invalid = op.get_bind().execute(
                sa.text("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"),
                {"name": f"core.{name}"},
            ).first()
            if invalid:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS core.{name}")
            op.create_index(
                name,
                "webhook_inbox",
                [column],
                unique=False,
                schema="core",
                postgresql_where=sa.text(where),
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    """Downgrade schema."""
    for name in _INDEXES:
        op.drop_index(name, table_name="webhook_inbox", schema="core")
    op.drop_column("webhook_inbox", "from_index", schema="core")
