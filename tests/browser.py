"""Debian's Chromium driven by playwright's Python client, as a person would
use the web app: elements found by role and label, and a screenshot of each
page at a phone's size and a desktop's, kept under var/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

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
# Live outcomes come over the event stream from a real worker.
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def phone(browser: Browser, base_url: str) -> BrowserContext:
    """A new person on a phone: their own cookies, Korean, Seoul time."""
    context = await browser.new_context(
        base_url=base_url, viewport=PHONE, locale="ko-KR", timezone_id="Asia/Seoul",
        has_touch=True)
    context.set_default_timeout(LIVE_TIMEOUT_MS)
    return context


async def screenshots(page: Page, name: str) -> None:
    """``name``-phone.png and ``name``-desktop.png, whole pages."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
    if before is not None:
        await page.set_viewport_size(before)
