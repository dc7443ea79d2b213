"""A station manager's dashboard shows their stations only, because the database returns nothing else."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from compliance.phones import mask
from tests.support.admin_world import World
from tests.support.asgi import TestClient
from tests.support.dashboard import csrf_of, station_campaign
from worker import pii
from worker.db import session_scope


def _index(phone: str) -> str:
    return pii.blind_index(phone, kind="phone").hex()


def _b_campaign(world: World) -> uuid.UUID:
    with session_scope() as s:
        return station_campaign(s, world.b.code).id


def test_manager_of_a_finds_nothing_of_b_by_url_search_or_lookup(manager_a: TestClient, world: World) -> None:
    """B's number page, campaign, station filter, lookup and report all answer 'not found'; no page names B."""
    campaign_b = _b_campaign(world)
    b_marks = world.b.ids() | {world.b.code, _index(world.b.phone), str(campaign_b)}
    pages = {path: manager_a.get(path) for path in (
        "/dashboard/", "/dashboard/reviews", "/dashboard/campaigns", "/dashboard/reports", "/dashboard/numbers",
        f"/dashboard/numbers/{_index(world.a.phone)}")}
    for path, page in pages.items():
        assert page.status_code == 200, path
        leaked = sorted(m for m in b_marks if m in page.text)
        assert leaked == [], f"{path} shows station B's {leaked}"
    assert world.a.code in pages["/dashboard/"].text
    assert str(world.a.review_id) in pages["/dashboard/reviews"].text
    # by URL
    for path in (f"/dashboard/numbers/{_index(world.b.phone)}", f"/dashboard/campaigns/{campaign_b}",
                 f"/dashboard/campaigns/{campaign_b}/progress", f"/dashboard/?station={world.b.code}"):
        refused = manager_a.get(path)
        assert refused.status_code == 404, path
        assert world.b.phone not in refused.text
    # by search (the number lookup form)
    csrf = csrf_of(pages["/dashboard/numbers"].text)
    looked_up = manager_a.post("/dashboard/numbers/lookup", data={"phone": world.b.phone, "csrf_token": csrf})
    assert looked_up.status_code == 404
    assert "no customer with that number at your stations" in looked_up.text
    # by a form naming B's objects
    for path, data in ((f"/dashboard/campaigns/{campaign_b}/pause", {}),
                       ("/dashboard/reports/opt-outs", {"station": world.b.code})):
        refused = manager_a.post(path, data={**data, "csrf_token": csrf})
        assert refused.status_code == 404, path
    with session_scope() as s:
        assert s.execute(text("SELECT status FROM marketing.campaigns WHERE id = :c"),
                         {"c": campaign_b}).scalar_one() == "draft"
        assert s.execute(text("SELECT count(*) FROM public.audit_logs WHERE resource_type = 'opt_out_report'"))\
            .scalar_one() == 0


def test_manager_sees_masked_numbers_and_no_text(manager_a: TestClient, world: World) -> None:
    """A station manager's number page masks the number and shows neither message text nor evidence."""
    page = manager_a.get(f"/dashboard/numbers/{_index(world.a.phone)}")
    assert page.status_code == 200
    assert world.a.phone not in page.text
    assert mask(world.a.phone) in page.text
    assert "your chef at a" not in page.text
    assert "setup a" not in page.text
    assert "Evidence is shown to compliance staff" in page.text
    assert "Download the dossier" not in page.text
    assert "Record the opt-out" not in page.text


def test_admin_sees_both_stations_and_full_numbers(admin: TestClient, world: World) -> None:
    """An admin's overview offers both stations; its number page shows the full number and the texts."""
    overview = admin.get("/dashboard/")
    assert world.a.code in overview.text
    assert world.b.code in overview.text
    page = admin.get(f"/dashboard/numbers/{_index(world.b.phone)}")
    assert page.status_code == 200
    assert world.b.phone in page.text
    assert "your chef at b" in page.text
