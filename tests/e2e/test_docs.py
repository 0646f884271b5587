"""What a newcomer opens first after `make run`: `/`, and `/docs` in a real
browser (Debian's Chromium, driven by playwright)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Response

from fitnus.demo import DEMO_ACCOUNTS

Client = TestClient[Any, Any]

SWAGGER_RENDER_MS = 30_000
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.portable
async def test_the_front_page_says_what_this_is_and_links_onwards(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "FitNus" in page
    for target in ("/docs", "/healthz", "#demo-logins"):
        assert f'href="{target}"' in page
    for account in DEMO_ACCOUNTS:
        assert account.email in page
        assert account.password in page
    for target in ("/docs", "/healthz", "/openapi.json"):
        assert (await client.get(target)).status == 200, target


async def test_production_shows_no_demo_passwords(aiohttp_client: Any, make_app: Any) -> None:
    client = await aiohttp_client(make_app(env="production"))
    page = await (await client.get("/")).text()
    assert 'href="/docs"' in page
    assert not any(account.password in page for account in DEMO_ACCOUNTS)


def test_the_readme_lists_the_demo_logins_the_front_page_points_to() -> None:
    readme = README.read_text()
    assert "## Demo logins" in readme
    for account in DEMO_ACCOUNTS:
        assert f"`{account.email}` | `{account.password}` | {account.role.value}" in readme


async def test_docs_list_every_operation_in_a_real_browser(client: Client,
                                                           browser: Browser) -> None:
    document = await (await client.get("/openapi.json")).json()
    declared = {(method.upper(), path) for path, item in document["paths"].items()
                for method in item}
    refused: list[str] = []

    def note_refusals(response: Response) -> None:
        if response.status >= 400:
            refused.append(f"{response.status} {response.url}")

    page = await browser.new_page()
    try:
        page.on("response", note_refusals)
        await page.goto(str(client.make_url("/docs")))
        # Either the operations render, or Swagger UI says why it could not load them.
        await page.wait_for_selector(".opblock, .errors-wrapper", timeout=SWAGGER_RENDER_MS)
        text = await page.inner_text("body")
        listed = await page.eval_on_selector_all(
            ".opblock",
            """blocks => blocks.map(block => [
                block.querySelector('.opblock-summary-method').textContent,
                block.querySelector('.opblock-summary-path').getAttribute('data-path'),
            ])""",
        )
    finally:
        await page.close()
    assert "Failed to load API definition" not in text, text
    assert refused == []
    assert {(method, path) for method, path in listed} == declared



def test_the_readme_shows_screenshots_the_browser_tests_take() -> None:
    """Copies of var/screenshots/<page>-<phone|desktop>.png, which the browser
    tests (tests/e2e/test_web_*.py) write through check_page."""
    shown = re.findall(r"!\[[^\]]+\]\((docs/screenshots/[^)]+\.png)\)", README.read_text())
    assert len(shown) >= 3
    tests = "".join(path.read_text() for path in Path(__file__).parent.glob("test_web_*.py"))
    for image in shown:
        assert (README.parent / image).is_file(), image
        page, size = Path(image).stem.rsplit("-", 1)
        assert size in ("phone", "desktop"), image
        assert f'check_page(page, "{page}")' in tests, f"no browser test takes {image}"
