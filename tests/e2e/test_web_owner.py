"""The owner's pages and the admin's in a real browser: the kiosk shows the
rotating code and that code checks a person in, whose attendance the owner
then sees; the owner opens a weekly pattern of sessions; the admin sees the
queues and verifies a month's settlement, which its owner then sees."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from typing import Any

import dramatiq
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Timeslot
from fitnus.settlement import rules
from fitnus.settlement.models import Settlement, SettlementStatus
from tests.browser import base_url, check_page, phone, sign_in
from tests.conftest import unique_email
from tests.e2e.test_booking import PRICE, fund, reserve
from tests.e2e.test_cancellation_policy import hours_ahead
from tests.e2e.test_centers import admin_account, new_center, new_program
from tests.e2e.test_settlements import first_of_next_month, settle_month_run
from tests.e2e.test_usage_records import (
    SEOUL,
    after,
    at,
    open_place,
    record_day,
    seat,
    seoul_day,
    timeslot,
)

Client = TestClient[Any, Any]
CSV_BOM = "\ufeff"


def suffix() -> str:
    return unique_email()[5:11]


async def test_the_kiosk_code_checks_a_person_in(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    owner = await sign_up("owner", name="김사장")
    center_name = f"출석 요가 {suffix()}"
    center = await new_center(client, owner, name=center_name, opens_at=None, closes_at=None)
    program = await new_program(client, owner, center["id"], name="새벽 요가",
                                price_coupons=PRICE)
    # Starting in 15 minutes: check-in is open (30 minutes either side of the start).
    created = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                json={"starts_at": hours_ahead(0.25), "capacity": 5},
                                headers=owner.headers)
    assert created.status == 201, await created.text()
    timeslot = await created.json()
    timeslot_id, seoul_date = timeslot["id"], timeslot["starts_at"][:10]
    person = await sign_up(name="박민수")
    await fund(person.id, PRICE)
    reserved = await reserve(client, person, timeslot_id, Prefer="wait=8")
    assert reserved.status == 201, await reserved.text()
    reservation_id = (await reserved.json())["id"]

    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, owner.email, "김사장")
        await page.goto(f"/owner/centers/{center['id']}/kiosk")
        await expect(page.get_by_role("heading", name=f"{center_name} 출석 체크")).to_be_visible()
        shown = page.get_by_role("status", name="출석 체크 코드")
        await expect(shown).to_have_text(re.compile(r"^\d{3} \d{3}$"))
        await expect(page.get_by_text(re.compile(r"^\d+초 뒤 새 코드$"))).to_be_visible()
        await check_page(page, "kiosk")
        code = (await shown.inner_text()).replace(" ", "")

        # The person, on their own phone, types the code the kiosk shows.
        visitor = await phone(browser, base_url(client))
        try:
            their = await visitor.new_page()
            await sign_in(their, person.email, "박민수", then=f"/me/calendar?date={seoul_date}")
            await their.get_by_role("button", name="출석 체크").click()
            await their.get_by_label("센터 키오스크의 코드 6자리").fill(code)
            await their.get_by_role("button", name="출석하기").click()
            await expect(their.get_by_role("status").filter(has_text="출석했어요")
                         ).to_be_visible()
            await check_page(their, "check-in")
        finally:
            await visitor.close()
        assert (await Reservation.get(id=reservation_id)).status is ReservationStatus.ATTENDED

        await page.get_by_role("link", name="사장님 화면으로").click()
        await expect(page.get_by_role("heading", name=center_name)).to_be_visible()
        # A session in its check-in window shows its attendance without asking.
        attendance = page.get_by_role("list", name=re.compile("새벽 요가 .* 출석 명단"))
        await expect(attendance.get_by_role("listitem")).to_have_text(re.compile(r"박민수\s+출석"))
        await expect(page.get_by_text("출석 1명 / 예약 1명")).to_be_visible()

        async with page.expect_download() as downloading:
            await page.get_by_role("button", name="이용 내역 CSV 받기").click()
        download = await downloading.value
        assert download.suggested_filename.startswith(f"usage-{center['id']}-")
        saved = await download.path()
        assert saved.read_text(encoding="utf-8").startswith(
            CSV_BOM + "id,date,reservation_id,user_name,program,starts_at,kind")
        await expect(page.get_by_text(re.compile(r"이용 내역 \d+건을 CSV 파일로 받았어요"))
                     ).to_be_visible()
        await check_page(page, "owner")
    finally:
        await context.close()


async def test_a_new_owner_registers_a_center_from_the_owners_page(
    client: Client, sign_up: Any, browser: Browser,
) -> None:
    owner = await sign_up("owner", name="한사장")
    center_name = f"새 클라이밍 {suffix()}"
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, owner.email, "한사장", then="/owner")
        await expect(page.get_by_text("아직 등록한 센터가 없어요")).to_be_visible()
        await page.get_by_label("센터 이름").fill(center_name)
        await page.get_by_label("주소").fill("서울 마포구 양화로 160")
        await page.get_by_label("위도").fill("37.5572")
        await page.get_by_label("경도").fill("126.9245")
        await page.get_by_role("button", name="센터 등록").click()
        await expect(page.get_by_text("종목을 하나 이상 골라 주세요.")).to_be_visible()
        await page.get_by_label("클라이밍").check()
        await page.get_by_label("여는 시간 (선택)").fill("06:00")
        await page.get_by_label("닫는 시간 (선택)").fill("23:00")
        await page.get_by_role("button", name="센터 등록").click()
        await expect(page.get_by_role("heading", name=center_name)).to_be_visible()
        await expect(page.get_by_text("아직 프로그램이 없어요")).to_be_visible()
        await check_page(page, "owner-new-center")
    finally:
        await context.close()
    listed = await (await client.get("/api/v1/owner/centers", headers=owner.headers)).json()
    [center] = listed["items"]
    assert (center["name"], center["sports"], center["latitude"], center["longitude"]) == (
        center_name, ["climbing"], 37.5572, 126.9245)
    assert (center["opens_at"], center["closes_at"]) == ("06:00:00", "23:00:00")


def weekdays_between(first: date, last: date, weekdays: set[int]) -> int:
    return sum(1 for n in range((last - first).days + 1)
               if (first + timedelta(days=n)).isoweekday() in weekdays)


async def test_an_owner_adds_a_program_and_opens_a_weekly_pattern(
    client: Client, sign_up: Any, browser: Browser,
) -> None:
    owner = await sign_up("owner", name="최사장")
    center_name = f"주간 필라테스 {suffix()}"
    center = await new_center(client, owner, name=center_name, sports=["yoga", "pilates"])
    first, last = seoul_day(2), seoul_day(22)
    expected = 2 * weekdays_between(first, last, {1, 3})

    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, owner.email, "최사장")
        await page.get_by_role("link", name="사장님", exact=True).click()
        await expect(page.get_by_role("heading", name=center_name)).to_be_visible()
        await expect(page.get_by_text("아직 프로그램이 없어요")).to_be_visible()

        await page.get_by_label("프로그램 이름").fill("저녁 필라테스")
        await page.get_by_label("종목").select_option(label="필라테스")
        await page.get_by_label("가격 (쿠폰 장수)").fill("15")
        await page.get_by_label("수업 시간 (분)").fill("50")
        await page.get_by_role("button", name="프로그램 추가").click()
        await expect(page.get_by_text("‘저녁 필라테스’ 프로그램을 추가했어요")).to_be_visible()

        await expect(page.get_by_label("수업을 열 프로그램")).to_have_value(re.compile(r"\d+"))
        await page.get_by_label("월요일", exact=True).check()
        await page.get_by_label("수요일", exact=True).check()
        await page.get_by_label("시작 시간 (여러 개는 쉼표로)").fill("07:00, 19:30")
        await page.get_by_label("첫 수업 날짜").fill(first.isoformat())
        await page.get_by_label("마지막 수업 날짜").fill(last.isoformat())
        await page.get_by_label("정원 (명)").fill("8")
        await page.get_by_role("button", name="수업 열기").click()
        await expect(page.get_by_text(f"수업 {expected}개를 열었어요.")).to_be_visible()
        await expect(page.get_by_role("button", name=re.compile("저녁 필라테스 .* 출석 보기"))
                     .first).to_be_visible()
    finally:
        await context.close()

    programs = await (await client.get(f"/api/v1/centers/{center['id']}/programs")).json()
    [program] = programs["items"]
    assert (program["name"], program["sport"], program["price_coupons"],
            program["duration_minutes"]) == ("저녁 필라테스", "pilates", 15, 50)
    slots = await Timeslot.filter(program_id=program["id"], withdrawn_at=None)
    assert len(slots) == expected
    starts = sorted(slot.starts_at.astimezone(SEOUL) for slot in slots)
    assert {start.isoweekday() for start in starts} == {1, 3}
    assert {start.time() for start in starts} == {time(7), time(19, 30)}
    assert first <= starts[0].date()
    assert starts[-1].date() <= last
    assert {slot.capacity for slot in slots} == {8}
    answered = await client.get(f"/api/v1/programs/{program['id']}/timeslots?limit=100")
    assert len((await answered.json())["items"]) == expected


async def test_an_admin_sees_the_queues_and_verifies_a_settlement(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    day = seoul_day(77)
    month = rules.month_of(day)
    place = await open_place(client, sign_up)
    await seat(client, sign_up, await timeslot(client, place, at(day, time(9))))
    await record_day(day, after(day))
    await settle_month_run(month, first_of_next_month(day))
    settlement = await Settlement.get(month=month, center_id=place.center_id)
    assert settlement.status is SettlementStatus.DRAFT
    admin = await admin_account(client)

    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, admin.email, admin.name)
        await page.get_by_role("link", name="관리", exact=True).click()
        await expect(page.get_by_role("heading", name="큐", exact=True)).to_be_visible()
        await expect(page.get_by_text(re.compile(r"기준 · \d+초마다 새로 고쳐요"))).to_be_visible()
        await expect(page.get_by_role("region", name=re.compile("워커 큐"))).to_be_visible()

        await page.get_by_label("정산 월").fill(month)
        await page.get_by_role("button", name="정산 조회").click()
        row = page.get_by_role("listitem").filter(has_text=f"#{place.center_id} · ")
        await expect(row).to_contain_text("검증 대기")
        await expect(row).to_contain_text(f"{settlement.payout_krw:,}원")
        await expect(row).to_contain_text(f"{settlement.gross_krw:,}원")
        await check_page(page, "admin")

        await row.get_by_role("button", name=re.compile("정산 검증$")).click()
        await expect(row).to_contain_text("검증을 마쳤어요")
        await expect(row.get_by_role("button", name=re.compile("정산 지급$"))).to_be_enabled()
        # The owner's page tells an admin, in words, whose page it is.
        await page.goto("/owner")
        refused = page.get_by_role("status").filter(has_text="사장님 계정으로 로그인해야")
        await expect(refused).to_be_visible()
    finally:
        await context.close()
    await settlement.refresh_from_db()
    assert settlement.status is SettlementStatus.VERIFIED

    # The center's owner sees the same month's settlement, in won.
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await sign_in(page, place.owner.email, "테스트 사용자")
        await page.goto("/owner")
        await page.get_by_label("정산 월").fill(month)
        await page.get_by_role("button", name="정산 보기").click()
        card = page.get_by_role("listitem").filter(has_text="정산").filter(has_text="지급액")
        await expect(card).to_contain_text("검증 완료")
        await expect(card).to_contain_text(f"{settlement.payout_krw:,}원")
        await expect(card).to_contain_text(f"−{settlement.commission_krw:,}원")
        await expect(card).to_contain_text(f"−{settlement.vat_krw:,}원")
    finally:
        await context.close()
