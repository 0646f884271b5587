"""The web app in a real browser, as a person on a phone uses it: sign up,
find a center, book with a live queue position, see the outcome arrive, cancel."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from fitnus.accounts.models import User
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Timeslot
from fitnus.commands.models import Command, CommandStatus
from fitnus.config import Settings
from fitnus.notifications.models import Notification
from tests.browser import PHONE, base_url, check_page, phone, sign_in
from tests.conftest import TEST_PASSWORD, eventually, unique_email
from tests.e2e.test_booking import fund, reserve, users_with_tokens
from tests.e2e.test_centers import in_days, new_center, new_program
from tests.fakes.kakao_login import CLIENT_ID, CLIENT_SECRET, FakeKakaoLogin, KakaoUser
from tests.ports import free_port
from web.keys import STREAMS

Client = TestClient[Any, Any]
SEOUL_CITY_HALL = (37.5663, 126.9779)
SEOUL = ZoneInfo("Asia/Seoul")
PRICE = 10


async def center_near_city_hall(client: Client, sign_up: Any, *, name: str,
                                capacity: int = 5, days: tuple[int, ...] = (3,)) -> list[int]:
    """A center 300 m from Seoul City Hall with a session on each of ``days``
    from now; their timeslot ids."""
    owner = await sign_up("owner", name="김사장")
    center = await new_center(client, owner, name=name, latitude=SEOUL_CITY_HALL[0] + 0.002,
                              longitude=SEOUL_CITY_HALL[1] + 0.002, sports=["yoga"])
    program = await new_program(client, owner, center["id"], name="저녁 요가",
                                price_coupons=PRICE)
    timeslots = []
    for day in days:
        response = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                     json={"starts_at": in_days(day, 10), "capacity": capacity},
                                     headers=owner.headers)
        assert response.status == 201, await response.text()
        timeslots.append(int((await response.json())["id"]))
    return timeslots


async def center_of(timeslot_id: int) -> int:
    timeslot = await Timeslot.get(id=timeslot_id).prefetch_related("program")
    return int(timeslot.program.center_id)  # type: ignore[attr-defined]


async def test_sign_up_find_book_live_and_cancel(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    center_name = f"시청 요가 {unique_email()[5:11]}"
    (timeslot_id,) = await center_near_city_hall(client, sign_up, name=center_name)
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
        await page.reload()
        await expect(page.get_by_text("쿠폰 50장")).to_be_visible()
        await check_page(page, "home")

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
@pytest.mark.parametrize("path", ["/centers/999999999", "/clubs/999999999",
                                  "/auctions/999999999"])
async def test_a_page_of_something_unknown_is_an_html_404(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "찾는 페이지가 없어요" in await response.text()


@pytest.mark.portable
@pytest.mark.parametrize("path", ["/centers/{}", "/clubs/{}", "/auctions/{}",
                                  "/owner/centers/{}/kiosk"])
async def test_an_id_no_api_accepts_finds_no_page(client: Client, path: str) -> None:
    assert (await client.get(path.format("9" * 20))).status == 404


@pytest.mark.portable
async def test_pages_answer_html_with_versioned_static_files(client: Client) -> None:
    page = await (await client.get("/centers")).text()
    script = re.search(r'src="(/static/centers\.js\?v=[^"]+)"', page)
    assert script is not None, page
    response = await client.get(script.group(1))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


async def test_a_browser_in_a_flash_crowd_shows_its_real_position_and_outcome(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker, browser: Browser,
) -> None:
    """200 API clients storm a 20-seat timeslot while a person books it from the
    page: the page shows the position the server gave and the outcome it decided."""
    center_name = f"붐비는 요가 {unique_email()[5:11]}"
    (timeslot_id,) = await center_near_city_hall(client, sign_up, name=center_name,
                                                 capacity=20)
    crowd = await users_with_tokens(settings, 200, coupons=PRICE)
    person = await sign_up(name="최유나")
    await fund(person.id, PRICE)
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, person.email, "최유나")
        await page.goto(f"/centers/{await center_of(timeslot_id)}")
        book = page.get_by_role("button", name=re.compile("저녁 요가 .* 예약하기"))
        await expect(book).to_be_enabled()
        # Every text the outcome line shows, however briefly.
        await page.evaluate("""id => {
          const line = document.querySelector(`[data-timeslot-id="${id}"] .outcome`);
          window.shown = [];
          new MutationObserver((changes) => changes.forEach((change) =>
            change.addedNodes.forEach((node) => window.shown.push(node.textContent))))
            .observe(line, {childList: true, characterData: true, subtree: true});
        }""", timeslot_id)

        async def storm() -> list[Any]:
            return await asyncio.gather(*(
                client.post("/api/v1/reservations", json={"timeslot_id": timeslot_id},
                            headers=headers) for _, headers in crowd))

        stormed = asyncio.create_task(storm())
        async with page.expect_response(
                lambda r: r.url.endswith("/api/v1/reservations")) as answered:
            await book.click()
        answer = await (await answered.value).json()
        responses = await stormed
        outcome = page.locator(f'[data-timeslot-id="{timeslot_id}"] .outcome')
        if "command_id" in answer:
            command_id = answer["command_id"]

            async def decided() -> bool:
                return await Command.filter(id=command_id).exists()

            await eventually(decided, deadline_seconds=30)
            command = await Command.get(id=command_id)
            shown = "예약 확정" if command.status is CommandStatus.SUCCEEDED else "마감되었어요"
            await expect(outcome).to_contain_text(shown)
            assert f"접수됨 · 대기 순번 {answer['position']}번" in await page.evaluate("shown")
        else:  # refused at the door: the timeslot was already known full
            assert answer["code"] == "sold_out"
            await expect(outcome).to_contain_text("마감되었어요")
        assert all(response.status in (202, 409) for response in responses)
    finally:
        await context.close()

    async def all_seated() -> bool:
        return await Reservation.filter(timeslot_id=timeslot_id, active=True).count() == 20

    await eventually(all_seated, deadline_seconds=30)
    assert (await Timeslot.get(id=timeslot_id)).reserved == 20


async def test_kakao_login_from_the_sign_in_page(
    aiohttp_server: Any, aiohttp_client: Any, make_app: Any, browser: Browser,
) -> None:
    """카카오로 시작하기 → Kakao (the local fake) → our callback → the page keeps
    the session in its cookie, and the tokens leave the address bar."""
    fake = FakeKakaoLogin(person=KakaoUser(id=secrets.randbelow(10**12) + 10**12,
                                           nickname="카카오 친구"))
    kakao_url = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
    port = free_port()
    client = await aiohttp_client(make_app(
        kakao_auth_base_url=kakao_url, kakao_api_base_url=kakao_url, kakao_client_id=CLIENT_ID,
        kakao_client_secret=CLIENT_SECRET,
        kakao_redirect_uri=f"http://127.0.0.1:{port}/api/v1/auth/kakao/callback",
    ), server_kwargs={"port": port})
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await page.goto("/login")
        await check_page(page, "login")
        async with page.expect_request(lambda r: r.method == "PUT"
                                       and r.url.endswith("/api/v1/session")) as adopting:
            await page.get_by_role("link", name="카카오로 시작하기").click()
        await adopting.value
        # By the time the page hands the refresh token over, it has left the address bar.
        assert page.url.endswith("/login/kakao"), page.url
        await expect(page.get_by_text("카카오 친구님")).to_be_visible()
        cookies = await context.cookies()
        session = next(cookie for cookie in cookies if cookie["name"] == "fitnus_session")
        assert session["httpOnly"]
        await page.reload()  # a new page restores the session from the cookie alone
        await expect(page.get_by_text("카카오 친구님")).to_be_visible()
    finally:
        await context.close()


@pytest.mark.portable
async def test_without_kakao_configured_the_sign_in_page_offers_no_kakao_button(
    client: Client,
) -> None:
    page = await (await client.get("/login")).text()
    assert "카카오로 시작하기" not in page



async def test_the_page_reopens_its_event_stream_with_a_new_ticket_and_the_last_id(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    """A browser's EventSource cannot reuse a spent ticket: after the stream
    drops, the page takes a new ticket and resumes after the last event seen,
    so an outcome decided while it was away still arrives."""
    center_name = f"끊김 요가 {unique_email()[5:11]}"
    first, second = await center_near_city_hall(client, sign_up, name=center_name, days=(3, 4))
    person = await sign_up(name="한도윤")
    await fund(person.id, PRICE * 2)
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url)
            if "/api/v1/events?" in request.url else None)
    try:
        await sign_in(page, person.email, "한도윤")
        await page.goto(f"/centers/{await center_of(first)}")
        card = page.locator(f'[data-timeslot-id="{first}"]')
        await card.get_by_role("button", name=re.compile("예약하기")).click()
        await expect(card.locator(".outcome")).to_contain_text("예약 확정")
        seen = await Notification.get(user_id=person.id, type="reservation.confirmed")

        # The server ends every stream, as it does when it shuts down, and
        # refuses new ones until the second booking has been decided.
        app = client.app
        app[STREAMS].close_all()
        await eventually(lambda: _none_open(app))
        card = page.locator(f'[data-timeslot-id="{second}"]')
        await card.get_by_role("button", name=re.compile("예약하기")).click()
        await eventually(lambda: Reservation.filter(user_id=person.id, timeslot_id=second,
                                                    active=True).exists())
        app[STREAMS].closing = False
        await expect(card.locator(".outcome")).to_contain_text("예약 확정")
    finally:
        await context.close()
    tickets = [parse_qs(urlsplit(url).query)["ticket"][0] for url in streams]
    assert len(set(tickets)) == len(tickets) >= 2
    assert parse_qs(urlsplit(streams[-1]).query)["last_event_id"] == [str(seen.id)]


async def _none_open(app: Any) -> bool:
    return not app[STREAMS]


async def test_the_calendar_moves_a_booking_and_hands_out_its_ical_link(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    """바꾸기 moves the booking to another session of the program (both seats
    change at once); the iCal link the page shows serves the moved booking."""
    center_name = f"옮김 요가 {unique_email()[5:11]}"
    first, second = await center_near_city_hall(client, sign_up, name=center_name, days=(3, 4))
    person = await sign_up(name="윤서아")
    await fund(person.id, PRICE)
    booked = await reserve(client, person, first, Prefer="wait=8")
    assert booked.status == 201, await booked.text()
    starts = (await Timeslot.get(id=first)).starts_at.astimezone(SEOUL)
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, person.email, "윤서아", then=f"/me/calendar?date={starts.date()}")
        await page.get_by_role("button", name="주간").click()
        await expect(page.get_by_text(center_name)).to_be_visible()
        await page.get_by_role("button", name="바꾸기").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("바꿀 수업").select_option(str(second))
        await dialog.get_by_role("button", name="바꾸기").click()
        await expect(page.get_by_role("status").filter(has_text="일정을 바꿨어요")).to_be_visible()
        moved = await Reservation.get(user_id=person.id, active=True)
        assert moved.timeslot_id == second  # type: ignore[attr-defined]
        assert (await Timeslot.get(id=first)).reserved == 0

        await page.get_by_role("button", name="iCal 링크 만들기").click()
        link = page.get_by_label("iCal 링크")
        await expect(link).to_have_value(re.compile(r"/api/v1/me/calendar\.ics\?token="))
        feed = await client.get(urlsplit(await link.input_value())._replace(
            scheme="", netloc="").geturl())
        assert feed.status == 200
        assert "BEGIN:VCALENDAR" in await feed.text()
        assert center_name in await feed.text()
    finally:
        await context.close()


@pytest.mark.parametrize("elsewhere", ["//evil.example/", "/\\evil.example/",
                                       "https://evil.example/"])
async def test_signing_in_never_leads_to_another_site(
    client: Client, sign_up: Any, browser: Browser, elsewhere: str,
) -> None:
    person = await sign_up(name="정하늘")
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, person.email, "정하늘", then=elsewhere)
        assert urlsplit(page.url).netloc == urlsplit(base_url(client)).netloc, page.url
    finally:
        await context.close()


async def test_a_sold_out_session_takes_a_waitlist_and_the_place_is_claimed_from_home(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    center_name = f"대기 요가 {unique_email()[5:11]}"
    (timeslot_id,) = await center_near_city_hall(client, sign_up, name=center_name, capacity=1)
    holder = await sign_up()
    await fund(holder.id, PRICE)
    held = await reserve(client, holder, timeslot_id, Prefer="wait=8")
    assert held.status == 201, await held.text()
    person = await sign_up(name="오지후")
    await fund(person.id, PRICE)
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, person.email, "오지후",
                      then=f"/centers/{await center_of(timeslot_id)}")
        card = page.locator(f'[data-timeslot-id="{timeslot_id}"]')
        await expect(card.locator(".seats")).to_have_text("마감")
        await card.get_by_role("button", name=re.compile("대기 명단에 올리기")).click()
        await expect(card.locator(".outcome")).to_contain_text("대기 순번 1번")

        await page.goto("/")
        await expect(page.get_by_text("대기 순번 1번")).to_be_visible()
        # The holder gives the seat back: the place is offered, and the page says so live.
        cancelled = await client.delete(f"/api/v1/reservations/{(await held.json())['id']}",
                                        headers=holder.headers)
        assert cancelled.status == 200, await cancelled.text()
        await expect(page.get_by_text("자리가 났어요", exact=True)).to_be_visible()
        await check_page(page, "home-waitlist")
        await page.get_by_role("button", name=re.compile("확정하기")).click()
        await expect(page.get_by_role("status").filter(has_text="예약 확정")).to_be_visible()
    finally:
        await context.close()
    assert await Reservation.filter(user_id=person.id, timeslot_id=timeslot_id,
                                    active=True).exists()


async def test_finding_a_center_works_with_javascript_off(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    """The form is an ordinary GET: the server answers it with the first page
    of results, as the API finds them."""
    center_name = f"스크립트 없이 요가 {unique_email()[5:11]}"
    (timeslot_id,) = await center_near_city_hall(client, sign_up, name=center_name)

    async def indexed() -> bool:
        found = await client.get("/api/v1/centers", params={
            "lat": SEOUL_CITY_HALL[0], "lng": SEOUL_CITY_HALL[1], "q": center_name})
        return bool((await found.json())["items"])

    await eventually(indexed)
    context = await browser.new_context(base_url=base_url(client), java_script_enabled=False,
                                        viewport=PHONE, locale="ko-KR")
    page = await context.new_page()
    try:
        await page.goto("/centers")
        await page.get_by_label("어디 근처?").select_option(label="서울시청")
        await page.get_by_label("센터 이름").fill(center_name)
        await page.get_by_role("button", name="검색").click()
        await expect(page.get_by_text("센터 1곳을 찾았어요.")).to_be_visible()
        await page.get_by_role("link", name=center_name).click()
        # The center reads without JavaScript too; its timetable needs it.
        await expect(page.get_by_role("heading", name=center_name)).to_be_visible()
        assert page.url.endswith(f"/centers/{await center_of(timeslot_id)}")
    finally:
        await context.close()
    nowhere = await client.get("/centers", params={"place": "north,pole", "q": "x"})
    assert nowhere.status == 200
    assert "찾았어요" not in await nowhere.text()
