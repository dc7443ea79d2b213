"""A real browser for the dashboard: Debian's chromium driven by Playwright (never a downloaded browser).

Each test gets a fresh profile (a new --user-data-dir) and a log of every request the browser
made; after the test, every one must have gone to 127.0.0.1 (the receiver under test): a
compliance tool that loads anything from another host is a finding. Screenshots go to
``MSGWORKER_TEST_ARTIFACTS`` if set, else ``<pytest's base temp>/artifacts``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.support.admin_world import World, build_world

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@dataclass
class Browser:
    base: str
    context: BrowserContext
    page: Page
    artifacts: Path
    requests: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def sign_in_with_token(self, token: str) -> None:
        self.goto("/dashboard/sign-in")
        self.page.get_by_label("Token (from msgworker token create)").fill(token)
        self.page.get_by_role("button", name="Sign in with the token").click()
        self.page.wait_for_url(re.compile(r".*/dashboard/$"))

    def shoot(self, name: str) -> list[Path]:
        """The current page at desktop and phone widths (full page), as PNG artifacts."""
        saved = []
        for label, (width, height) in WIDTHS.items():
            self.page.set_viewport_size({"width": width, "height": height})
            path = self.artifacts / f"{name}-{label}.png"
            self.page.screenshot(path=str(path), full_page=True)
            saved.append(path)
        self.page.set_viewport_size({"width": WIDTHS["desktop"][0], "height": WIDTHS["desktop"][1]})
        return saved

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests
                if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = Path(os.environ.get("MSGWORKER_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[object]:
    """Playwright's sync driver, stopped when this package's tests end: while it runs, the main
    thread counts as inside a running event loop, and later tests' ``asyncio.run`` would fail."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium (scripts/lib.sh)")
    with sync_playwright() as driver:
        yield driver


def open_browser(driver: object, base: str, artifacts: Path) -> tuple[Browser, str]:
    profile = tempfile.mkdtemp(prefix="msgworker-chromium-")
    context = driver.chromium.launch_persistent_context(  # type: ignore[attr-defined]
        profile, executable_path=CHROMIUM, headless=True, args=FLAGS, accept_downloads=True,
        viewport={"width": WIDTHS["desktop"][0], "height": WIDTHS["desktop"][1]})
    browser = Browser(base, context, context.pages[0] if context.pages else context.new_page(), artifacts)
    context.on("request", lambda request: browser.requests.append(request.url))
    return browser, profile


@pytest.fixture
def browser(playwright_driver: object, receiver: str, artifacts: Path) -> Iterator[Browser]:
    """A fresh chromium profile pointed at the real receiver; afterwards, no request may have left 127.0.0.1."""
    opened, profile = open_browser(playwright_driver, receiver, artifacts)
    try:
        yield opened
    finally:
        opened.context.close()
        shutil.rmtree(profile, ignore_errors=True)
    assert opened.requests, "the browser made no request: the test did not drive it"
    assert opened.foreign_requests() == []


@pytest.fixture
def world(receiver: str) -> World:
    """Two stations with customers, opt-outs, review items and held texts, and a token per role."""
    return build_world()
