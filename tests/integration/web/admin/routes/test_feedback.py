"""Feedback escalations through the API: the CLI's list, each station's own, the reply for text roles only."""

from __future__ import annotations

from tests.support.admin_world import World
from tests.support.asgi import TestClient


def test_escalations_show_the_reply_to_text_roles_and_only_their_stations_to_a_manager(
    api: TestClient, world: World
) -> None:
    """Support sees both stations' escalations with the customer's reply; A's manager sees A's, reply withheld."""
    support = api.get("/feedback/escalations", headers=world.auth("CUSTOMER_SUPPORT")).json()["items"]
    assert {e["review_id"] for e in support} == {str(world.a.campaigns.feedback_id), str(world.b.campaigns.feedback_id)}
    assert {(e["rating"], e["reply"]) for e in support} == {("could_be_better", "4")}
    manager = api.get("/feedback/escalations", headers=world.auth("STATION_MANAGER")).json()["items"]
    assert [(e["review_id"], e["station"], e["reply"], e["coupon"]) for e in manager] == [
        (str(world.a.campaigns.feedback_id), world.a.code, None, world.a.campaigns.coupon_code)]
    paged = api.get("/feedback/escalations?limit=1", headers=world.auth("ADMIN")).json()
    rest = api.get(f"/feedback/escalations?limit=1&cursor={paged['next_cursor']}", headers=world.auth("ADMIN")).json()
    assert len(paged["items"]) == len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert paged["items"][0]["review_id"] != rest["items"][0]["review_id"]
