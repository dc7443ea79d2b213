"""The admin API in-process (TestClient) against the real database, with a committed two-station world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.admin_world import World, build_world
from tests.support.asgi import TestClient
from worker.web.admin.app import create_admin_app


@pytest.fixture
def world(clean_db: str) -> World:
    return build_world()


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    with TestClient(create_admin_app()) as client:
        yield client
