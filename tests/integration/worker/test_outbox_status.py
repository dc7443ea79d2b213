"""Outbox statuses and purposes are spelled once, in worker/models/outbox.py, and agree with the database."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.gate import SendPurpose
from tests.factories import make_station, phone
from worker.models.outbox import OutboxStatus
from worker.outbox import enqueue

ROOT = Path(__file__).resolve().parents[3]


def _allowed_by_check(session: Session, name: str) -> set[str]:
    definition = session.execute(
        text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"), {"name": name}
    ).scalar_one()
    return set(re.findall(r"'([a-z_]+)'", definition))


def test_the_migrated_check_constraints_allow_exactly_the_enum_values(db_session: Session) -> None:
    """The status and purpose CHECK constraints built by the migrations list exactly the enums' values."""
    assert _allowed_by_check(db_session, "ck_outbound_messages_status") == {s.value for s in OutboxStatus}
    assert _allowed_by_check(db_session, "ck_outbound_messages_purpose") == {p.value for p in SendPurpose}


def test_rows_load_as_enum_members_and_store_their_values(db_session: Session) -> None:
    """A status written as a member is stored as its value, and a row read back holds members."""
    station = make_station(db_session)
    message = enqueue(
        db_session, station=station, to=phone(), body="Hi", purpose="marketing", idempotency_key="enum-1"
    ).message
    message.status = OutboxStatus.DEFERRED
    db_session.flush()
    stored = db_session.execute(
        text("SELECT status, purpose FROM core.outbound_messages WHERE id = :id"), {"id": message.id}
    ).one()
    assert (stored.status, stored.purpose) == ("deferred", "marketing")
    db_session.expire(message)
    assert message.status is OutboxStatus.DEFERRED
    assert message.purpose is SendPurpose.MARKETING


def test_groups_render_as_sql_lists_in_declaration_order() -> None:
    """A group's SQL fragment is its values quoted, in order, ready for an IN list."""
    assert OutboxStatus.CANCELLABLE.sql == "('pending', 'queued', 'deferred')"
    assert OutboxStatus.WENT_OUT.sql == "('sending', 'sent', 'delivered', 'undelivered', 'unknown')"
    assert OutboxStatus.WAITING.sql == "('pending', 'deferred')"


def test_outbound_sql_lists_no_statuses_by_hand() -> None:
    """No statement in worker/outbound spells a list of outbox statuses: they come from OutboxStatus's groups."""
    quoted = "|".join(s.value for s in OutboxStatus)
    hand_written = re.compile(rf"status\s+IN\s*\(\s*'({quoted})'")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sorted((ROOT / "worker" / "outbound").glob("*.py"))
        for match in hand_written.finditer(path.read_text())
    ]
    assert offenders == []
