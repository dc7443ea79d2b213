"""The receiver's group-committing inbox writer (worker/web/inbox_store.GroupStore) on the real database.

Every caller is answered after the transaction holding its row committed, a duplicate in the
same group is stored once, a row the database refuses fails alone, and an unreachable
database fails every waiting caller (the receiver then answers 503).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from worker.db import session_scope
from worker.web.inbox_store import GroupStore, StoreUnavailable, close_group_store, group_store


def _stored(event_ids: list[str]) -> set[str]:
    with session_scope() as session:
        rows = session.execute(
            text("SELECT provider_event_id FROM core.webhook_inbox WHERE provider_event_id = ANY(:ids)"),
            {"ids": event_ids},
        ).scalars()
        return set(rows)


async def _store(store: GroupStore, event_id: str) -> bool:
    return await store.store(provider="twilio_sms", event_id=event_id, delivery_id=None,
                             content_type="application/x-www-form-urlencoded", payload=f"MessageSid={event_id}")


def test_concurrent_webhooks_are_committed_before_each_caller_returns(clean_db: str) -> None:
    ids = [f"SM{i:032d}" for i in range(40)]

    async def one(event_id: str) -> bool:
        created = await _store(group_store(), event_id)
        assert event_id in _stored([event_id])  # committed: visible to another connection already
        return created

    async def main() -> list[bool]:
        try:
            return list(await asyncio.gather(*(one(i) for i in ids)))
        finally:
            await close_group_store()

    assert asyncio.run(main()) == [True] * 40
    assert _stored(ids) == set(ids)


def test_a_duplicate_in_the_same_group_is_stored_once(clean_db: str) -> None:
    async def main() -> list[bool]:
        try:
            store = group_store()
            return list(await asyncio.gather(*(_store(store, "SM" + "d" * 32) for _ in range(6))))
        finally:
            await close_group_store()

    assert sorted(asyncio.run(main())) == [False] * 5 + [True]
    assert _stored(["SM" + "d" * 32]) == {"SM" + "d" * 32}


def test_a_row_the_database_refuses_fails_alone(clean_db: str) -> None:
    """provider_event_id is varchar(255): a longer one is refused, its neighbours in the group are stored."""
    good = [f"SM{i:032d}" for i in range(10)]
    bad = "x" * 300

    async def main() -> list[bool | BaseException]:
        try:
            store = group_store()
            return list(await asyncio.gather(*(_store(store, e) for e in [*good[:5], bad, *good[5:]]),
                                             return_exceptions=True))
        finally:
            await close_group_store()

    results = asyncio.run(main())
    assert isinstance(results[5], StoreUnavailable)
    assert results[:5] + results[6:] == [True] * 10
    assert _stored([*good, bad]) == set(good)


def test_an_unreachable_database_fails_every_waiting_caller() -> None:
    async def main() -> list[bool | BaseException]:
        store = GroupStore("postgresql://postgres@127.0.0.1:1/nowhere")
        try:
            return list(await asyncio.gather(*(_store(store, f"SM{i:032d}") for i in range(8)),
                                             return_exceptions=True))
        finally:
            await store.close()

    results = asyncio.run(main())
    assert all(isinstance(r, StoreUnavailable) for r in results)
    with pytest.raises(StoreUnavailable, match="no database connection"):
        raise results[0]  # type: ignore[misc]
