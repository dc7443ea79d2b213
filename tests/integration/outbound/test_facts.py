"""The gate's lock and claim statements, pipelined in one round trip, keep their order's guarantees.

worker.outbound.facts.read_sendable sends the number-lock statement and the claim-with-facts
statement together. These tests hold a number's lock in another transaction so that the
decision waits between the two statements, change the database while it waits, and check
that the decision (a) sees what committed while it waited, and (b) leaves alone a row that
became sendable only while it waited (its number was never locked).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import phone
from tests.integration.outbound.test_send import customer_with_booking, put, row, settings_with, setup_station
from worker import pii
from worker.consent.ledger import record_event
from worker.db import get_sessionmaker, session_scope
from worker.locks import lock_number
from worker.outbound.decide import SendResult, decide_batch
from worker.outbound.facts import read_sendable

pytestmark = pytest.mark.usefixtures("clean_db", "clean_redis")

T = TypeVar("T")


def _wait_for_advisory_waiter(timeout: float = 10.0) -> None:
    """Until some backend of this database is waiting on an advisory lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as s:
            waiting = s.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the decision never waited on the number's lock")


def _in_thread(work: Callable[[Session], T]) -> Callable[[], T]:
    """Start ``work`` in its own session and transaction on a thread; the returned function
    waits for it and gives its answer (or re-raises its error in the test's thread)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            with session_scope() as s:
                out["answer"] = work(s)
        except BaseException as exc:  # re-raised in the test's thread below
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()

    def answer() -> T:
        thread.join(30)
        assert not thread.is_alive(), "the work did not finish"
        if "error" in out:
            raise out["error"]
        return cast(T, out["answer"])

    return answer


def _decide(ids: list[uuid.UUID]) -> Callable[[Session], list[SendResult]]:
    def work(s: Session) -> list[SendResult]:
        results, prepared = decide_batch(s, ids, task_id=None, now=datetime.now(UTC), settings=settings_with())
        # An allowed row comes back as a send to make; report it as its new status.
        return results + [SendResult(p.message_id, "sending") for p in prepared]

    return work


def _while_b_turns_sendable(
    work: Callable[[list[uuid.UUID]], Callable[[Session], T]],
) -> tuple[uuid.UUID, uuid.UUID, T]:
    """Rows A and B to two numbers; B is "sending" (not sendable), A's number is locked by
    another transaction. ``work([A, B])`` starts and waits for A's lock; meanwhile B becomes
    pending again (e.g. put back by a retry); then A's lock is released. (A, B, its answer)."""
    station_id, _ = setup_station()
    to_a = customer_with_booking(station_id)
    to_b = customer_with_booking(station_id, phone())
    row_a, row_b = put(station_id, to_a), put(station_id, to_b)
    with session_scope() as s:
        s.execute(text("UPDATE core.outbound_messages SET status = 'sending' WHERE id = :id"), {"id": row_b})
    holder = get_sessionmaker()()
    try:
        holder.begin()
        lock_number(holder, pii.blind_index(to_a, kind="phone"))
        answer = _in_thread(work([row_a, row_b]))
        _wait_for_advisory_waiter()
        with session_scope() as s:
            s.execute(text("UPDATE core.outbound_messages SET status = 'pending' WHERE id = :id"), {"id": row_b})
        holder.commit()
    finally:
        holder.close()
    return row_a, row_b, answer()


def test_an_opt_out_committed_while_the_decision_waits_is_seen() -> None:
    """The claim's facts are read after the lock is granted, in a later snapshot: the opt-out blocks."""
    station_id, _ = setup_station()
    to = customer_with_booking(station_id)
    mid = put(station_id, to)
    holder = get_sessionmaker()()
    try:
        holder.begin()
        record_event(
            holder, phone_e164=to, kind="opt_out", purpose="all", source="staff",
            evidence={"by": "test"}, occurred_at=datetime.now(UTC),
        )  # fmt: skip
        results = _in_thread(_decide([mid]))
        _wait_for_advisory_waiter()
        holder.commit()
    finally:
        holder.close()
    [result] = results()
    assert (result.status, result.reason) == ("blocked", "opted_out")
    assert row(mid).gate_reason == "opted_out"


def test_a_row_that_became_sendable_while_the_lock_waited_is_left_alone() -> None:
    """Row B was not sendable when the lock statement chose its numbers, so B's number was never
    locked; B turns sendable before the claim runs. The claim sees B, but the decision must not."""
    row_a, row_b, results = _while_b_turns_sendable(_decide)
    by_id = {r.message_id: r for r in results}
    assert by_id[row_a].status == "sending"  # decided (allowed) under its lock
    assert (by_id[row_b].status, by_id[row_b].reason) == ("skipped", "not_sendable")
    after = row(row_b)
    assert (after.status, after.gate_decision, after.decided_at) == ("pending", None, None)


def test_read_sendable_returns_no_facts_for_a_row_whose_number_it_did_not_lock() -> None:
    """The same window, one level down: read_sendable itself leaves row B out of both answers,
    so no caller can decide B from facts read without B's number lock."""

    def read(ids: list[uuid.UUID]) -> Callable[[Session], tuple[set[uuid.UUID], set[uuid.UUID]]]:
        def work(s: Session) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
            indexes, claimed = read_sendable(s, ids, now=datetime.now(UTC))
            return set(indexes), set(claimed)

        return work

    row_a, _, (locked, claimed) = _while_b_turns_sendable(read)
    assert locked == {row_a}
    assert claimed == {row_a}
