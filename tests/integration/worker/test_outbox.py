"""enqueue_many on the real database: new and existing keys, refusals one by one, values as stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_station, phone
from worker import pii
from worker.after_commit import pending_tasks
from worker.outbox import SEND_TASK, EnqueueError, OutboxItem, enqueue, enqueue_many
from worker.phone import PhoneNumber


def test_enqueue_many_returns_new_and_existing_rows_and_refuses_items_one_by_one(db_session: Session) -> None:
    """The contract the fan-out and the consent engine rely on, through the binary-array insert.

    The insert returns the ids of the rows it made and looks up only the keys that were already
    queued; a key twice in one call is one row; a refused item is reported and the rest queued;
    every column arrives as given (ciphertext, blind index, segments, a None column, not_before).
    """
    station = make_station(db_session)
    before = enqueue(db_session, station_id=station.id, to=phone(), body="earlier", purpose="transactional",
                     idempotency_key="k-existing").message.id
    number = PhoneNumber.parse(phone())
    later = datetime.now(UTC) + timedelta(hours=2)
    items = [
        OutboxItem(station_id=station.id, to=number, body="Hola 😀 ñ, \"quoted\" {braces}, back\\slash",
                   purpose="marketing", idempotency_key="k-new", not_before=later, created_by="campaign"),
        OutboxItem(station_id=station.id, to=phone(), body="again", purpose="transactional",
                   idempotency_key="k-existing"),
        OutboxItem(station_id=station.id, to=phone(), body="twice", purpose="transactional", idempotency_key="k-dup"),
        OutboxItem(station_id=station.id, to=phone(), body="twice", purpose="transactional", idempotency_key="k-dup"),
        OutboxItem(station_id=station.id, to=phone(), body="   ", purpose="transactional", idempotency_key="k-empty"),
        OutboxItem(station_id=station.id, to="not a number", body="hi", purpose="transactional",
                   idempotency_key="k-bad-number"),
    ]
    out = enqueue_many(db_session, items)
    assert out["k-existing"] == before
    assert isinstance(out["k-new"], uuid.UUID)
    assert isinstance(out["k-dup"], uuid.UUID)
    assert isinstance(out["k-empty"], EnqueueError)
    assert isinstance(out["k-bad-number"], EnqueueError)
    assert out["k-bad-number"].field == "to"
    rows = db_session.execute(text(
        "SELECT idempotency_key, id, body, to_encrypted, to_index, segments, purpose, thread_id, not_before, "
        "created_by FROM core.outbound_messages WHERE idempotency_key LIKE 'k-%' ORDER BY idempotency_key"
    )).mappings().all()
    assert [r["idempotency_key"] for r in rows] == ["k-dup", "k-existing", "k-new"]
    new = rows[2]
    assert new["id"] == out["k-new"]
    assert new["body"] == items[0].body
    assert pii.decrypt(new["to_encrypted"], kind="phone") == number.e164
    assert bytes(new["to_index"]) == number.index
    assert new["segments"] == 1
    assert new["purpose"] == "marketing"
    assert new["created_by"] == "campaign"
    assert new["thread_id"] is None
    assert new["not_before"] == later
    assert rows[1]["body"] == "earlier"  # the row queued before is left as it was


def _send_task_ids(session: Session) -> list[str]:
    return [i for name, kwargs, _ in pending_tasks(session) if name == SEND_TASK for i in kwargs["message_ids"]]


def test_a_compliance_text_due_now_gets_a_send_task_at_commit(db_session: Session) -> None:
    """An opt-out confirmation (or START/HELP reply) queued due now is handed to a send task when its
    transaction commits, not left for the next release tick; a row that already existed, one
    scheduled for later, and every other purpose wait for the tick (it paces campaigns)."""
    station = make_station(db_session)
    confirm = enqueue(db_session, station_id=station.id, to=phone(), body="You're unsubscribed", purpose="compliance",
                      idempotency_key="c-now").message.id
    enqueue(db_session, station_id=station.id, to=phone(), body="again", purpose="compliance",
            idempotency_key="c-now")
    enqueue(db_session, station_id=station.id, to=phone(), body="later", purpose="compliance",
            idempotency_key="c-later", not_before=datetime.now(UTC) + timedelta(minutes=5))
    enqueue(db_session, station_id=station.id, to=phone(), body="chef at 6", purpose="transactional",
            idempotency_key="t-now")
    many = enqueue_many(db_session, [
        OutboxItem(station_id=station.id, to=phone(), body="help text", purpose="compliance", idempotency_key="m-help"),
        OutboxItem(station_id=station.id, to=phone(), body="20% off", purpose="marketing", idempotency_key="m-promo"),
        OutboxItem(station_id=station.id, to=phone(), body="again", purpose="compliance", idempotency_key="c-now"),
    ])
    assert _send_task_ids(db_session) == [str(confirm), str(many["m-help"])]
    # Still "pending": the release tick remains the fallback if the task is lost.
    statuses = db_session.execute(text(
        "SELECT DISTINCT status FROM core.outbound_messages WHERE idempotency_key IN ('c-now', 'm-help')"
    )).scalars().all()
    assert statuses == ["pending"]


def test_send_tasks_of_a_rolled_back_savepoint_are_dropped(db_session: Session) -> None:
    """A reply queued in a savepoint that rolls back (a failed ingest group) publishes nothing."""
    station = make_station(db_session)
    try:
        with db_session.begin_nested():
            enqueue(db_session, station_id=station.id, to=phone(), body="You're unsubscribed", purpose="compliance",
                    idempotency_key="c-undone")
            raise ValueError("group failed")
    except ValueError:
        pass
    assert _send_task_ids(db_session) == []
