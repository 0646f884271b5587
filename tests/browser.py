"""Debian's Chromium driven by playwright's Python client, as a person would
use the web app: elements found by role and label, and a screenshot of each
page at a phone's size and a desktop's, kept under var/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import TEST_PASSWORD

CHROMIUM = "/usr/bin/chromium"  # the Makefile installs it; playwright's download is unreachable
# Without the background-networking flags, Chromium's own connections are
# refused on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Live outcomes come over the event stream from a real worker: what a test
# waits for (an action, or an expect() on the page) may take this long.
LIVE_TIMEOUT_MS = 15_000
expect.set_options(timeout=LIVE_TIMEOUT_MS)
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PAGE_BUDGET_BYTES = 100 * 1024
# What a page and everything it loaded cost on the wire, images left out, as
# bodies: a file from the cache counts as if fetched.
_BYTES_BEFORE_IMAGES = """() => {
  const image = /\\.(png|jpe?g|gif|webp|svg|ico)(\\?|$)/;
  const entries = [...performance.getEntriesByType("navigation"),
                   ...performance.getEntriesByType("resource")];
  return entries.filter((e) => e.initiatorType !== "img" && !image.test(e.name))
    .reduce((sum, e) => sum + e.encodedBodySize, 0);
}"""


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def base_url(client: TestClient[Any, Any]) -> str:
    """Where a browser reaches the app under test."""
    return str(client.make_url("")).rstrip("/")


async def phone(browser: Browser, base_url: str) -> BrowserContext:
    """A new person on a phone: their own cookies, Korean, Seoul time."""
    context = await browser.new_context(
        base_url=base_url, viewport=PHONE, locale="ko-KR", timezone_id="Asia/Seoul",
        has_touch=True)
    context.set_default_timeout(LIVE_TIMEOUT_MS)
    return context


async def assert_accessible(page: Page) -> None:
    """No WCAG 2.2 A/AA violation axe-core can find on the page as it stands."""
    results = await Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA},
                                             "resultTypes": ["violations"]})
    assert results.violations_count == 0, results.generate_report()


async def assert_light(page: Page) -> None:
    """No page over 100 KB before images, counted as the browser fetched it."""
    weight = await page.evaluate(_BYTES_BEFORE_IMAGES)
    assert 0 < weight <= PAGE_BUDGET_BYTES, f"{page.url}: {weight} bytes before images"


async def screenshots(page: Page, name: str) -> None:
    """``name``-phone.png and ``name``-desktop.png, whole pages."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
    if before is not None:
        await page.set_viewport_size(before)


async def check_page(page: Page, name: str) -> None:
    """What every page of the web app must be, checked where a test has it
    showing: accessible, light, and kept as screenshots."""
    await assert_accessible(page)
    await assert_light(page)
    await screenshots(page, name)


async def sign_in(page: Page, email: str, name: str, *, password: str = TEST_PASSWORD,
                  then: str = "/") -> None:
    """Through the sign-in page, as the person would, going on to ``then``;
    done once the header greets them."""
    await page.goto(f"/login?{urlencode({'next': then})}")
    await page.get_by_label("이메일").fill(email)
    await page.get_by_label("비밀번호").fill(password)
    await page.get_by_role("button", name="로그인", exact=True).click()
    await expect(page.get_by_text(f"{name}님")).to_be_visible()
