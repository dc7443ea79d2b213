"""Coupon redemption through the API: coupons.redeem, once, audited once, refused clearly after."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from worker.db import session_scope
from worker.models import AuditLog


def test_a_code_is_redeemed_once_and_the_second_time_names_the_first(api: TestClient, world: World) -> None:
    """200 with the token as redeemer and one audit row; again 409 naming when and by whom; unknown 404."""
    code = world.a.campaigns.coupon_code
    first = api.post("/coupons/redeem", json={"code": f"  {code.lower()} "}, headers=world.auth("STATION_MANAGER"))
    assert first.status_code == 200, first.text
    assert (first.json()["code"], first.json()["status"], first.json()["redeemed_by"]) == (
        code, "redeemed", "test-station_manager")
    second = api.post("/coupons/redeem", json={"code": code}, headers=world.auth("ADMIN"))
    assert (second.status_code, second.json()["code"], second.json()["field"]) == (409, "conflict", "code")
    assert "already redeemed at" in second.json()["message"]
    assert "by test-station_manager" in second.json()["message"]
    unknown = api.post("/coupons/redeem", json={"code": "NOSUCHCODE"}, headers=world.auth("ADMIN"))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    with session_scope() as s:
        rows = list(s.execute(select(AuditLog).where(AuditLog.resource_type == "coupon")).scalars())
    assert len(rows) == 1
    assert rows[0].actor.startswith("api:test-station_manager;role=STATION_MANAGER")
    assert rows[0].station_id == world.a.station_id
