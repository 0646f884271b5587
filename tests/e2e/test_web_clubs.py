"""The club pages in a real browser: a leader starts a club and a meetup, a
person finds the club by name, applies, hears the decision live, joins the
meetup with a live queue position; the calendar shows a booking and a meetup."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from fitnus.clock import system_clock
from fitnus.clubs.models import ClubApplication, ClubMember, Meetup, MeetupAttendee
from tests.browser import base_url, check_page, phone, sign_in
from tests.e2e.test_booking import fund, open_session, reserve
from tests.e2e.test_clubs import joined, new_club

Client = TestClient[Any, Any]
SEOUL = ZoneInfo("Asia/Seoul")
FEE = 3
MEETUP_TITLE = "토요 아침 러닝"


def seoul_day(days_ahead: int) -> date:
    return system_clock.now().astimezone(SEOUL).date() + timedelta(days=days_ahead)


async def leader_starts_a_club_and_a_meetup(page: Page, client: Client, leader: Any,
                                            *, name: str, day: date) -> int:
    """In the leader's browser: a taken name is refused in words, then the
    club, then a meetup at 7:00 Seoul time on ``day``; the club's id."""
    taken = await new_club(client, leader, name=f"{name} 원조")
    await sign_in(page, leader.email, "김크루장", then="/clubs")
    await page.get_by_text("새 크루 만들기").click()
    await page.get_by_label("크루 이름").last.fill(taken["name"].upper())
    await page.get_by_label("러닝").check()
    await page.get_by_role("button", name="크루 만들기").click()
    await expect(page.get_by_role("alert")).to_have_text("이미 있는 크루 이름이에요.")
    await page.get_by_label("크루 이름").last.fill(name)
    await page.get_by_label("소개").fill("토요일 아침마다 한강을 달려요")
    await page.get_by_label("최대 인원 (선택)").fill("30")
    await page.get_by_role("button", name="크루 만들기").click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    club_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    await page.get_by_label("모임 이름").fill(MEETUP_TITLE)
    await page.get_by_label("시작 (한국 시간)").fill(f"{day.isoformat()}T07:00")
    await page.get_by_label("장소").fill("여의나루역 2번 출구")
    await page.get_by_label("정원 (명)").fill("5")
    await page.get_by_label("참가비 (쿠폰, 장)").fill(str(FEE))
    await page.get_by_role("button", name="모임 만들기").click()
    await expect(page.get_by_role("button", name=re.compile(f"{MEETUP_TITLE} .* 참여하기"))
                 ).to_be_visible()
    return club_id


async def test_a_person_finds_a_club_is_accepted_live_and_joins_a_meetup_live(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    name = f"한강 러너스 {uuid.uuid4().hex[:6]}"
    day = seoul_day(3)
    leader = await sign_up(name="김크루장")
    person = await sign_up(name="박지민")
    await fund(person.id, 20)
    leader_context = await phone(browser, base_url(client))
    context = await phone(browser, base_url(client))
    try:
        leader_page = await leader_context.new_page()
        club_id = await leader_starts_a_club_and_a_meetup(leader_page, client, leader,
                                                         name=name, day=day)
        meetup = await Meetup.get(club_id=club_id)
        # The Seoul wall clock typed in is the moment stored.
        assert meetup.starts_at == datetime.combine(day, time(7), SEOUL)
        assert (meetup.fee_coupons, meetup.capacity, meetup.place) == (
            FEE, 5, "여의나루역 2번 출구")

        page = await context.new_page()
        await sign_in(page, person.email, "박지민", then="/clubs")
        await page.get_by_label("크루 이름").first.fill(name.split()[-1])
        await page.get_by_role("button", name="검색").click()
        found = page.get_by_role("link", name=name, exact=True)
        await expect(found).to_be_visible()
        await expect(page.get_by_text("아직 함께하는 크루가 없어요.")).to_be_visible()
        await check_page(page, "clubs")
        await found.click()

        await expect(page.get_by_role("heading", name=name)).to_be_visible()
        await expect(page.get_by_text("크루원 1/30명")).to_be_visible()
        await page.get_by_label("크루장에게 한마디 (선택)").fill("주말마다 같이 뛰고 싶어요")
        await page.get_by_role("button", name="가입 신청").click()
        await expect(page.get_by_text("가입 신청했어요")).to_be_visible()
        application = await ClubApplication.get(club_id=club_id, user_id=person.id)
        assert application.message == "주말마다 같이 뛰고 싶어요"

        # The leader's page hears of the application and decides it.
        accept = leader_page.get_by_role("button", name="박지민님의 가입 신청 수락")
        await expect(accept).to_be_visible()
        await check_page(leader_page, "club-leader")
        await accept.click()
        await expect(leader_page.get_by_role("status").filter(has_text="박지민님이 크루원이 됐어요")
                     ).to_be_visible()
        assert await ClubMember.exists(club_id=club_id, user_id=person.id)

        # The applicant's page changes as the decision arrives, no reload.
        await expect(page.get_by_text("가입 신청이 수락됐어요. 이제 크루원이에요!")).to_be_visible()
        await expect(page.get_by_text("크루원 2/30명")).to_be_visible()
        join = page.get_by_role("button", name=re.compile(f"{MEETUP_TITLE} .* 참여하기"))
        await join.click()
        outcome = page.locator(f'[data-meetup-id="{meetup.id}"] .outcome')
        await expect(outcome).to_contain_text(re.compile("접수됨 · 대기 순번 \\d+번|참여 확정"))
        await expect(outcome).to_contain_text("참여 확정")
        await expect(page.locator(f'[data-meetup-id="{meetup.id}"] .seats')
                     ).to_have_text("남은 자리 4/5")
        await check_page(page, "club")
        place = await MeetupAttendee.get(meetup_id=meetup.id, user_id=person.id, active=True)
        assert place.fee_coupons == FEE

        await page.goto("/clubs")
        mine = page.locator("#mine").get_by_role("link", name=name, exact=True)
        await expect(mine).to_be_visible()
    finally:
        await context.close()
        await leader_context.close()


async def test_the_calendar_shows_a_booking_and_a_meetup_of_the_same_day(
    client: Client, sign_up: Any, worker: dramatiq.Worker, browser: Browser,
) -> None:
    day = seoul_day(4)
    leader, person = await sign_up(), await sign_up(name="박지민")
    await fund(person.id, 50)
    club = await new_club(client, leader, name=f"새벽 러너스 {uuid.uuid4().hex[:6]}")
    await joined(client, leader, person, club["id"])
    created = await client.post(f"/api/v1/clubs/{club['id']}/meetups", json={
        "title": MEETUP_TITLE, "starts_at": f"{day.isoformat()}T07:00:00+09:00",
        "duration_minutes": 90, "place": "여의나루역 2번 출구", "capacity": 5, "fee_coupons": FEE,
    }, headers=leader.headers)
    assert created.status == 201, await created.text()
    meetup = await created.json()
    joining = await client.post(f"/api/v1/meetups/{meetup['id']}/attendees",
                                headers={**person.headers, "Prefer": "wait=8"})
    assert joining.status == 201, await joining.text()
    session = await open_session(client, sign_up, capacity=5,
                                 starts_at=f"{day.isoformat()}T19:00:00+09:00")
    booked = await reserve(client, person, session.timeslot_id, Prefer="wait=8")
    assert booked.status == 201, await booked.text()

    context = await phone(browser, base_url(client))
    try:
        page = await context.new_page()
        await sign_in(page, person.email, "박지민", then=f"/me/calendar?date={day.isoformat()}")
        entries = page.locator("#entries")
        await expect(entries.locator('[data-kind="reservation"]')).to_contain_text("아침 요가")
        await expect(entries.locator('[data-kind="club_event"]')).to_contain_text(MEETUP_TITLE)
        # Both under the one Seoul day, the meetup (7:00) first.
        day_item = entries.locator(":scope > li").filter(
            has=page.locator('[data-kind="club_event"]'))
        await expect(day_item.locator("[data-kind]")).to_have_count(2)
        await expect(day_item.locator("[data-kind]").first).to_have_attribute(
            "data-kind", "club_event")
        await check_page(page, "calendar-with-meetup")
    finally:
        await context.close()
