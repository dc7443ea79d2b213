"""Station isolation through the API: a STATION_MANAGER of A never sees, reaches or writes B.

Every list endpoint is read as A's manager and must carry none of B's ids; every detail and
write endpoint aimed at B's objects must answer 404 (not 403: B's objects must not be known
to exist). The whole round is repeated on a pool of one connection, alternating A's manager
and B's manager request by request: a role or a setting left behind on the connection by one
request would show in the next one's rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.pool import QueuePool

from tests.integration.web.admin.operations import BY_ID
from tests.support.admin_world import Side, World
from tests.support.asgi import TestClient
from worker.db import session_scope
from worker.models import AuditLog, OutboundMessage
from worker.settings import get_settings
from worker.web.admin.app import create_admin_app

# A's manager may call these; the lists, then the details and writes aimed at an object.
LISTS = ["list_stations", "list_senders_all", "list_threads", "list_reviews", "list_held", "list_campaigns",
         "list_escalations"]
TARGETED = ["get_station", "list_senders", "get_thread", "list_thread_messages", "lookup_consent", "release_held",
            "cancel_held", "get_send", "create_send", "create_campaign", "get_campaign", "campaign_status",
            "preview_campaign", "start_campaign", "pause_campaign", "resume_campaign", "cancel_campaign",
            "redeem_coupon", "export_opt_outs"]


def _list(api: TestClient, world: World, name: str, side_token: str) -> str:
    path = "/senders" if name == "list_senders_all" else BY_ID[name].path(world.a, world)
    response = api.get(path, headers=world.auth(side_token))
    assert response.status_code == 200, response.text
    return response.text


def _targeted(api: TestClient, world: World, op_id: str, target: Side, token: str) -> tuple[int, str]:
    method, path, body = BY_ID[op_id].request(target, world)
    response = api.request(method, path, json=body, headers=world.auth(token))
    return response.status_code, response.text


def _round(api: TestClient, world: World) -> None:
    """A's manager and B's manager, alternating, each against both stations."""
    for name in LISTS:
        seen_a = _list(api, world, name, "STATION_MANAGER")
        seen_b = _list(api, world, name, "STATION_MANAGER_B")
        assert not any(i in seen_a for i in world.b.ids()), name
        assert not any(i in seen_b for i in world.a.ids()), name
        assert str(world.a.station_id) in seen_a or world.a.code in seen_a or name == "list_reviews", name
    for op_id in TARGETED:
        status_ab, text_ab = _targeted(api, world, op_id, world.b, "STATION_MANAGER")
        status_ba, text_ba = _targeted(api, world, op_id, world.a, "STATION_MANAGER_B")
        assert (status_ab, status_ba) == (404, 404), (op_id, text_ab, text_ba)
        assert json.loads(text_ab)["code"] == "not_found"
        # A 404 may repeat what the request named (its path and body), never anything else of B's.
        named = " ".join(str(part) for part in BY_ID[op_id].request(world.b, world)).upper()
        assert not any(i in text_ab for i in world.b.ids() if i.upper() not in named), (op_id, text_ab)


def test_a_station_manager_sees_nothing_of_another_station(api: TestClient, world: World) -> None:
    """Lists carry none of the other station's ids; its objects, read or written, are 404s."""
    _round(api, world)


@pytest.fixture
def one_connection(world: World) -> Iterator[Engine]:
    engine = create_engine(get_settings().DATABASE_URL, poolclass=QueuePool, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def test_isolation_holds_on_one_pooled_connection(world: World, one_connection: Engine) -> None:
    """With a pool of one, every request reuses the connection of the other station's request before it."""
    with TestClient(create_admin_app(engine=one_connection)) as api:
        _round(api, world)
        _round(api, world)
    assert one_connection.pool.checkedout() == 0
    with one_connection.connect() as conn:  # the connection every request used, as the pool hands it out
        row = conn.execute(text("SELECT current_user, current_setting('app.station_ids', true), "
                                "current_setting('app.role', true)")).one()
    assert row[0] != "msgworker_api"
    assert not row[1]
    assert not row[2]


def test_a_write_naming_another_station_is_refused_by_the_policy(api: TestClient, world: World) -> None:
    """A's manager sending from B's station: 404 from the outbox's WITH CHECK, and no row and no audit row."""
    def counts() -> tuple[int, int]:
        with session_scope() as s:
            return (int(s.execute(select(func.count()).select_from(OutboundMessage)).scalar_one()),
                    int(s.execute(select(func.count()).select_from(AuditLog)).scalar_one()))

    before = counts()
    status, text = _targeted(api, world, "create_send", world.b, "STATION_MANAGER")
    assert status == 404
    assert json.loads(text) == {"code": "not_found", "message": f"no station with id {world.b.station_id}",
                                "field": "station_id"}
    assert counts() == before
    status, _ = _targeted(api, world, "create_send", world.a, "STATION_MANAGER")
    assert status == 201
