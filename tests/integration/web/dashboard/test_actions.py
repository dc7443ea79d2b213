"""What a person does on the dashboard goes through the same services as the CLI and the API, audited as them."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from tests.support.admin_world import World
from tests.support.asgi import TestClient
from tests.support.dashboard import csrf_of, dashboard_client, sign_in_with_token, station_campaign
from worker import pii
from worker.db import session_scope
from worker.reports.verify import verify_zip


def _rows(sql: str, **params: object) -> list[tuple[object, ...]]:
    with session_scope() as s:
        return [tuple(r) for r in s.execute(text(sql), params)]


def _index(phone: str) -> str:
    return pii.blind_index(phone, kind="phone").hex()


def test_resolving_a_review_item_records_the_opt_out_and_audits_the_person(admin: TestClient, world: World) -> None:
    """Resolve as opt-out: item resolved_opt_out, an opt_out ledger event by the person, one audit row as dashboard."""
    queue = admin.get("/dashboard/reviews")
    assert f"review-{world.a.review_id}" in queue.text
    done = admin.post(f"/dashboard/reviews/{world.a.review_id}/resolve",
                      data={"resolution": "opt_out", "note": "they said cancel everything",
                            "csrf_token": csrf_of(queue.text)})
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/reviews?done=opt_out"
    assert _rows("SELECT status, resolved_by, note FROM compliance.review_items WHERE id = :i", i=world.a.review_id) \
        == [("resolved_opt_out", "test-admin", "they said cancel everything")]
    assert _rows("SELECT count(*) FROM compliance.consent_events WHERE idempotency_key = :k",
                 k=f"review:{world.a.review_id}:opt_out") == [(1,)]
    (actor,) = _rows("SELECT actor FROM public.audit_logs WHERE resource_type = 'review_item' AND resource_id = :i",
                     i=str(world.a.review_id))
    assert str(actor[0]).startswith("dashboard:test-admin;role=ADMIN;token=")
    after = admin.get("/dashboard/reviews?done=opt_out")
    assert "Resolved as an opt-out" in after.text
    assert f"review-{world.a.review_id}" not in after.text


def test_a_resolution_without_a_note_is_refused_in_words(admin: TestClient, world: World) -> None:
    """No note: a 422 page that says what to write; the item stays open."""
    queue = admin.get("/dashboard/reviews")
    refused = admin.post(f"/dashboard/reviews/{world.a.review_id}/resolve",
                         data={"resolution": "not_opt_out", "note": " ", "csrf_token": csrf_of(queue.text)})
    assert refused.status_code == 422
    assert "Write a note" in refused.text
    assert _rows("SELECT status FROM compliance.review_items WHERE id = :i", i=world.a.review_id) == [("open",)]


def test_a_station_manager_may_not_resolve(manager_a: TestClient, world: World) -> None:
    """A station manager sees the item but gets a 403 page naming the roles that may resolve."""
    queue = manager_a.get("/dashboard/reviews")
    assert "Resolve" not in queue.text
    refused = manager_a.post(f"/dashboard/reviews/{world.a.review_id}/resolve",
                             data={"resolution": "opt_out", "note": "x", "csrf_token": csrf_of(queue.text)})
    assert refused.status_code == 403
    assert "may not resolve review items" in refused.text


def test_staff_opt_out_and_opt_in_with_evidence(world: World) -> None:
    """Support records an opt-out; an admin records an opt-in with evidence; both are ledger events and audit rows."""
    page_path = f"/dashboard/numbers/{_index(world.b.phone)}"
    with dashboard_client() as support:
        sign_in_with_token(support, world.secrets["CUSTOMER_SUPPORT"])
        page = support.get(page_path)
        assert "Record the opt-out" in page.text
        assert "Record the opt-in" not in page.text
        done = support.post(f"{page_path}/opt-out", data={"purpose": "all", "note": "called the office",
                                                          "csrf_token": csrf_of(page.text)})
        assert done.status_code == 303
        assert "The staff opt-out is recorded" in support.get(done.headers["location"]).text
        refused = support.post(f"{page_path}/opt-in", data={"purpose": "marketing", "evidence": "x",
                                                            "csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403
    with dashboard_client() as admin:
        sign_in_with_token(admin, world.secrets["ADMIN"])
        page = admin.get(page_path)
        missing = admin.post(f"{page_path}/opt-in", data={"purpose": "marketing", "csrf_token": csrf_of(page.text)})
        assert missing.status_code == 422
        assert "needs its evidence" in missing.text
        done = admin.post(f"{page_path}/opt-in", data={
            "purpose": "all", "evidence": "signed paper form #42, filed at the Brooklyn office",
            "consented_at": "2026-11-02T15:04:00-05:00", "csrf_token": csrf_of(page.text)})
        assert done.status_code == 303
    events = _rows("SELECT kind, source, evidence->>'by' FROM compliance.consent_events WHERE phone_index = :i "
                   "ORDER BY seq", i=pii.blind_index(world.b.phone, kind="phone"))
    assert events[-2:] == [("opt_out", "staff", "test-customer_support"), ("opt_in", "staff", "test-admin")]
    actors = _rows("SELECT actor FROM public.audit_logs WHERE resource_type = 'consent_event' ORDER BY created_at")
    assert [str(a[0]).split(";")[0] for a in actors[-2:]] == ["dashboard:test-customer_support", "dashboard:test-admin"]


def test_pause_and_resume_a_campaign(world: World) -> None:
    """The station's manager pauses and resumes a started campaign from its page; each change is audited."""
    with session_scope() as s:
        campaign = station_campaign(s, world.a.code)
        s.execute(text("UPDATE marketing.campaigns SET status = 'scheduled' WHERE id = :c"), {"c": campaign.id})
    path = f"/dashboard/campaigns/{campaign.id}"
    with dashboard_client() as manager:
        sign_in_with_token(manager, world.secrets["STATION_MANAGER"])
        listing = manager.get("/dashboard/campaigns")
        assert path in listing.text
        page = manager.get(path)
        assert page.status_code == 200
        assert "Gate preview" in page.text
        assert ">Pause<" in page.text
        paused = manager.post(f"{path}/pause", data={"csrf_token": csrf_of(page.text)})
        assert paused.status_code == 303
        page = manager.get(paused.headers["location"])
        assert "The campaign is paused" in page.text
        assert ">Resume<" in page.text
        resumed = manager.post(f"{path}/resume", data={"csrf_token": csrf_of(page.text)})
        assert resumed.status_code == 303
        again = manager.post(f"{path}/resume", data={"csrf_token": csrf_of(page.text)})
        assert again.status_code == 409
        assert "cannot resume it" in again.text
        progress = manager.get(f"{path}/progress")
        assert progress.status_code == 200
        assert 'data-status="scheduled"' in progress.text
    assert _rows("SELECT reason FROM public.audit_logs WHERE resource_type = 'campaign' AND resource_id = :c "
                 "AND actor LIKE 'dashboard:%' ORDER BY created_at", c=str(campaign.id)) == [("paused",), ("resumed",)]


def test_report_download_verifies_and_is_listed_with_who_made_it(admin: TestClient, world: World,
                                                                 tmp_path: Path) -> None:
    """The opt-out ZIP downloaded from the reports page passes report verify; the page lists the export."""
    page = admin.get("/dashboard/reports")
    assert "No export yet" in page.text
    today = datetime.now(UTC).date().isoformat()
    got = admin.post("/dashboard/reports/opt-outs", data={"from": today, "to": today, "station": world.a.code,
                                                          "csrf_token": csrf_of(page.text)})
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/zip"
    assert f'filename="opt-outs-{today}-{today}-{world.a.code}.zip"' in got.headers["content-disposition"]
    saved = tmp_path / "report.zip"
    saved.write_bytes(got.content)
    check = verify_zip(saved)
    assert check.ok
    assert check.sha256 == got.headers["x-content-sha256"]
    summary = check.summary or {}
    assert summary["parameters"]["station"] == world.a.code.upper()
    assert summary["figures"]["revocations"] == 1
    listed = admin.get("/dashboard/reports")
    assert "dashboard:test-admin" in listed.text
    assert f"opt-outs {today} to {today} · {world.a.code.upper()}" in listed.text


def test_dossier_download(admin: TestClient, world: World) -> None:
    """An admin downloads a number's dossier ZIP from its page (audited as a number_dossier export)."""
    path = f"/dashboard/numbers/{_index(world.a.phone)}"
    page = admin.get(path)
    got = admin.post(f"{path}/dossier", data={"csrf_token": csrf_of(page.text)})
    assert got.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(got.content)).namelist()
    assert "consent_events.csv" in names
    assert "outbound_texts.csv" in names
    assert _rows("SELECT count(*) FROM public.audit_logs WHERE resource_type = 'number_dossier' "
                 "AND actor LIKE 'dashboard:test-admin%'") == [(1,)]
