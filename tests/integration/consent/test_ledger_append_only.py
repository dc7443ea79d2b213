"""compliance.consent_events refuses UPDATE and DELETE in the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from worker import pii

PHONE = "+14155552671"


def _insert_event(session: Session) -> int:
    return int(
        session.execute(
            text(
                "INSERT INTO compliance.consent_events (phone_index, phone_encrypted, kind, purpose, "
                "source, evidence, occurred_at, hash) VALUES (:pi, :pe, 'opt_out', 'all', 'staff', "
                "'{}'::jsonb, now(), :h) RETURNING seq"
            ),
            {"pi": pii.blind_index(PHONE, kind="phone"), "pe": pii.encrypt(PHONE, kind="phone"), "h": b"\x00" * 32},
        ).scalar_one()
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE compliance.consent_events SET kind = 'opt_in' WHERE seq = :seq",
        "DELETE FROM compliance.consent_events WHERE seq = :seq",
        "TRUNCATE compliance.consent_events",
    ],
)
def test_raw_sql_cannot_change_events(db_session: Session, statement: str) -> None:
    """Raw UPDATE, DELETE and TRUNCATE on the ledger all fail with the append-only error."""
    seq = _insert_event(db_session)
    with pytest.raises(DBAPIError, match="append-only"), db_session.begin_nested():
        db_session.execute(text(statement), {"seq": seq})
    kind = db_session.execute(
        text("SELECT kind FROM compliance.consent_events WHERE seq = :seq"), {"seq": seq}
    ).scalar_one()
    assert kind == "opt_out"
