"""The web app in a real browser, as a person on a phone uses it: sign up,
find a center, book with a live queue position, see the outcome arrive, cancel."""

from __future__ import annotations

import re
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from fitnus.accounts.models import User
from fitnus.booking.models import Reservation, ReservationStatus
from tests.browser import check_page, phone
from tests.conftest import TEST_PASSWORD, unique_email
from tests.e2e.test_booking import fund
from tests.e2e.test_centers import in_days, new_center, new_program

Client = TestClient[Any, Any]
SEOUL_CITY_HALL = (37.5663, 126.9779)
PRICE = 10


def base_url(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


async def center_near_city_hall(client: Client, sign_up: Any, *, name: str,
                                capacity: int = 5) -> int:
    """A center 300 m from Seoul City Hall with one session in three days."""
    owner = await sign_up("owner", name="김사장")
    center = await new_center(client, owner, name=name, latitude=SEOUL_CITY_HALL[0] + 0.002,
                              longitude=SEOUL_CITY_HALL[1] + 0.002, sports=["yoga"])
    program = await new_program(client, owner, center["id"], name="저녁 요가",
                                price_coupons=PRICE)
    response = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                 json={"starts_at": in_days(3, 19), "capacity": capacity},
                                 headers=owner.headers)
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def test_sign_up_find_book_live_and_cancel(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    center_name = f"시청 요가 {unique_email()[5:11]}"
    timeslot_id = await center_near_city_hall(client, sign_up, name=center_name)
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        email = unique_email("browser")
        await page.goto("/signup")
        await check_page(page, "signup")
        await page.get_by_label("이름").fill("박지민")
        await page.get_by_label("이메일").fill(email)
        await page.get_by_label("비밀번호").fill(TEST_PASSWORD)
        await page.get_by_role("button", name="가입하기").click()
        await expect(page.get_by_text("박지민님")).to_be_visible()
        user = await User.get(email=email)
        await fund(user.id, 50)

        await page.get_by_role("link", name="센터 찾기").first.click()
        await page.get_by_label("어디 근처?").select_option(label="서울시청")
        await page.get_by_role("button", name="검색").click()
        result = page.get_by_role("link", name=center_name)
        await expect(result).to_be_visible()
        await check_page(page, "centers")
        await result.click()

        await expect(page.get_by_role("heading", name=center_name)).to_be_visible()
        book = page.get_by_role("button", name=re.compile("저녁 요가 .* 예약하기"))
        await book.click()
        outcome = page.locator(f'[data-timeslot-id="{timeslot_id}"] .outcome')
        # The queue position shows at once; the worker's decision replaces it live.
        await expect(outcome).to_contain_text(re.compile("접수됨 · 대기 순번 \\d+번|예약 확정"))
        await expect(outcome).to_contain_text("예약 확정")
        await check_page(page, "center")
        reservation = await Reservation.get(user_id=user.id, timeslot_id=timeslot_id)
        assert reservation.status is ReservationStatus.CONFIRMED

        await page.get_by_role("link", name="내 일정에서 보기").click()
        await expect(page.get_by_text("저녁 요가")).to_be_visible()
        await check_page(page, "calendar")
        await page.get_by_role("button", name="예약 취소").click()
        # The refund shows before the person confirms.
        await expect(page.get_by_text(f"전액 환불 · 쿠폰 {PRICE}장을 돌려받아요.")).to_be_visible()
        await page.get_by_role("dialog").get_by_role("button", name="예약 취소").click()
        await expect(page.get_by_role("status").filter(has_text="예약을 취소했어요")
                     ).to_be_visible()
        await reservation.refresh_from_db()
        assert reservation.status is ReservationStatus.CANCELLED
    finally:
        await context.close()


@pytest.mark.portable
async def test_pages_answer_html_with_versioned_static_files(client: Client) -> None:
    page = await (await client.get("/centers")).text()
    script = re.search(r'src="(/static/centers\.js\?v=[^"]+)"', page)
    assert script is not None, page
    response = await client.get(script.group(1))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
