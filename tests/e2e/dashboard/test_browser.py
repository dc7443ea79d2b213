"""The dashboard in a real browser (Debian's chromium through Playwright) against the real receiver process,
worker and database: what compliance staff and a station manager do, seen as they see it."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.e2e.dashboard.conftest import Browser
from tests.factories import make_customer, make_station, phone, station_number
from tests.support.admin_world import World
from tests.support.dashboard import station_campaign
from tests.support.processes import VENV_BIN, Proc
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs
from worker import pii
from worker.audit import Actor
from worker.campaigns import lifecycle
from worker.db import session_scope
from worker.identity import users
from worker.models import Station, UserRole

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough passphrase"


def _scalar(sql: str, **params: object) -> object:
    with session_scope() as s:
        return s.execute(text(sql), params).scalar_one()


def _index(number: str) -> str:
    return pii.blind_index(number, kind="phone").hex()


def test_sign_in_with_the_keyboard_and_sign_out(browser: Browser, world: World) -> None:
    """A staff user signs in using only the keyboard, sees the overview, signs out; the cookie's flags are set."""
    with session_scope() as s:
        users.create_user(s, email="dana@example.test", role=UserRole.CUSTOMER_SUPPORT, password=PASSWORD,
                          actor=Actor.cli("test"), first_name="Dana")
    page = browser.page
    browser.goto("/dashboard/")
    page.wait_for_url(re.compile(r".*/dashboard/sign-in\?ended=1$"))
    browser.shoot("sign-in")
    page.locator("body").focus()
    for _ in range(12):  # Tab from the top of the page to the e-mail field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "email":
            break
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type("dana@example.test")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/dashboard/$"))
    assert page.get_by_role("heading", name="Were the opt-outs honoured?").is_visible()
    assert "Dana" in page.locator("header").inner_text()
    (cookie,) = [c for c in browser.context.cookies() if c["name"] == "mw_dashboard"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # development: Secure and __Host- come with APP_ENV=production
    assert cookie["expires"] == -1  # a browser-session cookie: the server ends idle sessions
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/dashboard/sign-in\?signed_out=1$"))
    assert page.get_by_text("You are signed out.").is_visible()
    browser.goto("/dashboard/reviews")
    page.wait_for_url(re.compile(r".*/dashboard/sign-in\?ended=1$"))


def test_a_signed_stop_webhook_appears_on_the_overview_and_the_timeline(browser: Browser, world: World,
                                                                       worker_proc: Proc) -> None:
    """A STOP posted as Twilio signs it shows on the overview and in the number's timeline within seconds."""
    to = station_number()
    with session_scope() as s:
        code = make_station(s, sms_number=to).code
    number = phone()
    browser.sign_in_with_token(world.secrets["ADMIN"])
    browser.goto(f"/dashboard/?station={code}")
    heading = browser.page.locator("#figures-h")
    assert heading.inner_text().startswith("0 opt-outs received")
    raw, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=number, to=to, body="STOP"))
    posted_at = time.monotonic()
    assert httpx.post(browser.base + SMS_PATH, content=raw, headers=headers, timeout=10).status_code == 200
    while not heading.inner_text().startswith("1 opt-out received"):
        waited = time.monotonic() - posted_at
        assert waited < 10, f"the STOP was not on the overview after 10 s:\n{worker_proc.log()[-2000:]}"
        time.sleep(0.3)
        browser.page.reload()
        heading = browser.page.locator("#figures-h")
    assert browser.page.locator("[data-figure=sends-after]").inner_text() == "0"
    browser.goto("/dashboard/numbers")
    browser.page.get_by_label("Phone number").fill(number)
    browser.page.get_by_role("button", name="Look up").click()
    browser.page.wait_for_url(re.compile(rf".*/dashboard/numbers/{_index(number)}$"))
    timeline = browser.page.locator("ol.timeline").inner_text()
    assert "opt out (all) · sms keyword" in timeline
    assert "Opted out" in browser.page.locator("p.verdict").inner_text()
    assert time.monotonic() - posted_at < 15


def test_resolve_a_review_item(browser: Browser, world: World) -> None:
    """Support opens the queue, marks the ambiguous reply as an opt-out with a note, and it leaves the queue."""
    browser.sign_in_with_token(world.secrets["CUSTOMER_SUPPORT"])
    browser.goto("/dashboard/reviews")
    item = browser.page.locator(f"#review-{world.a.review_id}")
    item.get_by_label("Yes: record the opt-out and confirm it").check()
    item.get_by_label("Note: what the message meant").fill("asked us to cancel everything")
    item.get_by_role("button", name="Resolve").click()
    browser.page.wait_for_url(re.compile(r".*/dashboard/reviews\?done=opt_out$"))
    assert browser.page.get_by_role("status").inner_text().startswith("Resolved as an opt-out")
    assert browser.page.locator(f"#review-{world.a.review_id}").count() == 0
    assert _scalar("SELECT status FROM compliance.review_items WHERE id = :i", i=world.a.review_id) \
        == "resolved_opt_out"


def test_pause_and_resume_a_campaign(browser: Browser, world: World) -> None:
    """The station's manager pauses a running campaign and resumes it from its page; the progress sums up."""
    with session_scope() as s:
        station = s.get(Station, world.a.station_id)
        assert station is not None
        for _ in range(3):
            make_customer(s, station, phone_e164=phone())
        campaign = station_campaign(s, world.a.code)
        lifecycle.start(s, campaign.id, Actor.cli("marketer"), now=datetime.now(UTC))
    browser.sign_in_with_token(world.secrets["STATION_MANAGER"])
    browser.goto("/dashboard/campaigns")
    browser.page.get_by_role("link", name="Winter 20").click()
    page = browser.page
    assert page.locator("[data-status]").inner_text() == "scheduled"
    browser.shoot("campaign")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_url(re.compile(r".*\?done=pause$"))
    assert page.locator("[data-status]").inner_text() == "paused"
    page.get_by_role("button", name="Resume").click()
    page.wait_for_url(re.compile(r".*\?done=resume$"))
    assert page.locator("[data-status]").inner_text() == "scheduled"
    assert _scalar("SELECT count(*) FROM public.audit_logs WHERE resource_type = 'campaign' "
                   "AND actor LIKE 'dashboard:test-station_manager%'") == 2


def test_download_a_report_and_verify_it(browser: Browser, world: World, tmp_path: Path) -> None:
    """The opt-out report downloaded from the reports page passes `msgworker report verify` with only the file."""
    browser.sign_in_with_token(world.secrets["ADMIN"])
    browser.goto("/dashboard/reports")
    browser.page.get_by_label("Station").select_option(world.a.code)
    with browser.page.expect_download() as info:
        browser.page.get_by_role("button", name="Download the ZIP").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    verified = subprocess.run([str(VENV_BIN / "msgworker"), "report", "verify", str(saved)], capture_output=True,
                              text=True, timeout=60, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"ok: {saved} is exactly as exported")
    browser.goto("/dashboard/reports")
    assert "dashboard:test-admin" in browser.page.locator("#exports-h + table").inner_text()


def test_a_station_manager_of_a_finds_nothing_of_b(browser: Browser, world: World) -> None:
    """By URL, by the station filter, by the number lookup and in every list: nothing of station B."""
    with session_scope() as s:
        campaign_b = station_campaign(s, world.b.code, name="B only")
    browser.sign_in_with_token(world.secrets["STATION_MANAGER"])
    page = browser.page
    options = page.locator("#station option").all_inner_texts()
    assert any(world.a.code in o for o in options)
    assert not any(world.b.code in o for o in options)
    for path in (f"/dashboard/numbers/{_index(world.b.phone)}", f"/dashboard/campaigns/{campaign_b.id}",
                 f"/dashboard/?station={world.b.code}"):
        browser.goto(path)
        assert page.get_by_role("heading", name="Not found").is_visible(), path
    browser.goto("/dashboard/numbers")
    page.get_by_label("Phone number").fill(world.b.phone)
    page.get_by_role("button", name="Look up").click()
    assert page.get_by_role("alert").inner_text() == "no customer with that number at your stations"
    for path in ("/dashboard/", "/dashboard/reviews", "/dashboard/campaigns", "/dashboard/reports"):
        browser.goto(path)
        shown = page.content()
        for mark in (world.b.code, str(world.b.review_id), _index(world.b.phone), str(campaign_b.id), "B only"):
            assert mark not in shown, f"{path} shows {mark}"


def test_a_form_posted_without_its_csrf_token_is_refused(browser: Browser, world: World) -> None:
    """The review form with its CSRF field removed from the page is refused (403, in words) and changes nothing."""
    browser.sign_in_with_token(world.secrets["ADMIN"])
    browser.goto("/dashboard/reviews")
    item = browser.page.locator(f"#review-{world.a.review_id}")
    item.locator("input[name=csrf_token]").evaluate("field => field.remove()")
    item.get_by_label("No: keep texting").check()
    item.get_by_label("Note: what the message meant").fill("forged")
    item.get_by_role("button", name="Resolve").click()
    assert browser.page.get_by_role("heading", name="Not allowed").is_visible()
    assert "did not come from this dashboard page" in browser.page.get_by_role("alert").inner_text()
    assert _scalar("SELECT status FROM compliance.review_items WHERE id = :i", i=world.a.review_id) == "open"


PAGES = {
    "overview": "/dashboard/",
    "lookup": "/dashboard/numbers",
    "reviews": "/dashboard/reviews",
    "campaigns": "/dashboard/campaigns",
    "reports": "/dashboard/reports",
}


def test_every_page_at_desktop_and_phone_width(browser: Browser, world: World) -> None:
    """Each page is captured at both widths; at phone width nothing scrolls sideways, and every field has a label."""
    with session_scope() as s:
        station_campaign(s, world.a.code)
    browser.sign_in_with_token(world.secrets["ADMIN"])
    pages = {**PAGES, "number": f"/dashboard/numbers/{_index(world.a.phone)}"}
    for name, path in pages.items():
        browser.goto(path)
        unlabelled = browser.page.evaluate(
            "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(f => f.labels.length === 0).map(f => f.name)")
        assert unlabelled == [], f"{name}: fields without a label: {unlabelled}"
        shots = browser.shoot(name)
        assert all(p.stat().st_size > 5000 for p in shots)
        browser.page.set_viewport_size({"width": 390, "height": 844})
        overflow = browser.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways at phone width by {overflow}px"
        browser.page.set_viewport_size({"width": 1280, "height": 900})
    times = browser.page.locator("time").first
    assert times.get_attribute("title", timeout=2000) is not None


def test_the_request_log_sees_a_request_to_another_host(browser: Browser) -> None:
    """The check that no request leaves 127.0.0.1 can fail: a page load from another host name is caught."""
    other = browser.base.replace("127.0.0.1", "localhost") + "/healthz"
    browser.page.goto(other)
    assert browser.foreign_requests() == [other]
    browser.requests.remove(other)  # this test's deliberate request; the fixture checks the rest
    browser.goto("/dashboard/sign-in")
