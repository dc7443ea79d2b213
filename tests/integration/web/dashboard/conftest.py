"""The dashboard in-process (TestClient, mounted at /dashboard) against the real database, over the admin
API's committed two-station world (tests/support/admin_world.py): its tokens sign in here too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.admin_world import World, build_world
from tests.support.asgi import TestClient
from tests.support.dashboard import dashboard_client, sign_in_with_token


@pytest.fixture
def world(clean_db: str) -> World:
    return build_world()


@pytest.fixture
def dash(world: World) -> Iterator[TestClient]:
    """A browser that has not signed in."""
    with dashboard_client() as client:
        yield client


@pytest.fixture
def admin(world: World) -> Iterator[TestClient]:
    with dashboard_client() as client:
        sign_in_with_token(client, world.secrets["ADMIN"])
        yield client


@pytest.fixture
def manager_a(world: World) -> Iterator[TestClient]:
    with dashboard_client() as client:
        sign_in_with_token(client, world.secrets["STATION_MANAGER"])
        yield client
