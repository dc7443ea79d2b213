"""The receiver's group-committing inbox writer (worker/web/inbox_store.GroupStore) on the real database.

Every caller is answered after the transaction holding its row committed, a duplicate in the
same group is stored once, a row the database refuses fails alone, an unreachable database
fails every waiting caller (the receiver then answers 503), a store that cannot commit gives
up at its deadline, and the number of waiting webhooks is bounded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from worker.db import session_scope
from worker.db_deadlines import libpq_url
from worker.settings import Settings, get_settings
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


# Deadlines and the bound on waiting webhooks (worker/db_deadlines.py). A row that another
# transaction has inserted and not yet committed makes an INSERT of the same key wait on the
# unique index: a store that cannot finish, on the real database, for as long as the test likes.


@pytest.fixture
def uncommitted(clean_db: str) -> Iterator[str]:
    """An event id inserted by an open transaction (rolled back at the end): storing it again waits."""
    event_id = "SM" + uuid.uuid4().hex
    with psycopg.connect(libpq_url(get_settings().DATABASE_URL)) as conn:
        conn.execute(
            "INSERT INTO core.webhook_inbox (provider, provider_event_id, content_type, payload_encrypted)"
            " VALUES ('twilio_sms', %s, 'text/plain', 'x')",
            (event_id,),
        )
        yield event_id
        conn.rollback()


def _store_with(settings: Settings) -> GroupStore:
    return GroupStore(libpq_url(settings.DATABASE_URL), settings)


def test_a_webhook_not_committed_within_the_deadline_fails_at_the_deadline(uncommitted: str) -> None:
    """A store that cannot commit gives up after WEBHOOK_STORE_TIMEOUT (not the 3 s lock timeout, not never)."""
    store = _store_with(get_settings().model_copy(update={"WEBHOOK_STORE_TIMEOUT": 1.0}))

    async def main() -> float:
        started = time.monotonic()
        try:
            with pytest.raises(StoreUnavailable) as caught:
                await _store(store, uncommitted)
            assert caught.value.reason == "timeout"
            return time.monotonic() - started
        finally:
            await store.close()

    assert 0.9 < asyncio.run(main()) < 1.5


def test_when_the_waiting_webhooks_reach_the_bound_the_next_one_fails_at_once(uncommitted: str) -> None:
    """With WEBHOOK_MAX_WAITING webhooks waiting, one more is refused immediately; once they are done, stores work."""
    store = _store_with(get_settings().model_copy(update={"WEBHOOK_STORE_TIMEOUT": 2.0, "WEBHOOK_MAX_WAITING": 3}))

    async def main() -> tuple[float, list[bool | BaseException], bool]:
        try:
            waiting = [asyncio.ensure_future(_store(store, uncommitted)) for _ in range(3)]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await _store(store, "SM" + uuid.uuid4().hex)
            refused_in = time.monotonic() - started
            assert caught.value.reason == "busy"
            results = list(await asyncio.gather(*waiting, return_exceptions=True))
            return refused_in, results, await _store(store, "SM" + uuid.uuid4().hex)
        finally:
            await store.close()

    refused_in, results, later = asyncio.run(main())
    assert refused_in < 0.1
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert later is True
