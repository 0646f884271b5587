"""Repeat my month: each confirmed booking asked for again, as an ordinary
reservation, on the same weekday and time of day of the matching week."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.booking.models import Reservation
from fitnus.booking.rules import Month
from fitnus.clock import system_clock
from tests.e2e.test_booking import PRICE, fund, reserve
from tests.e2e.test_centers import new_center, new_program

Client = TestClient[Any, Any]
SEOUL = ZoneInfo("Asia/Seoul")


def months_ahead(count: int) -> Month:
    today = system_clock.now().astimezone(SEOUL).date()
    index = today.year * 12 + today.month - 1 + count
    return Month(index // 12, index % 12 + 1)


def nth_weekday(month: Month, weekday: int, nth: int) -> date:
    """The nth (0-based) ``weekday`` (0 = Monday) of the month."""
    first = date(month.year, month.month, 1)
    return date(month.year, month.month, 1 + (weekday - first.weekday()) % 7 + 7 * nth)


def label(month: Month) -> str:
    return f"{month.year}-{month.month:02d}"


async def weekly_program(client: Client, owner: Any, first: Month, last: Month) -> list[Any]:
    """Mondays and Wednesdays at 07:00, through both months."""
    program = await new_program(client, owner, (await new_center(client, owner))["id"],
                                price_coupons=PRICE)
    last_day = date(last.year, last.month, calendar.monthrange(last.year, last.month)[1])
    created = await client.post(
        f"/api/v1/programs/{program['id']}/timeslots/weekly",
        json={"weekdays": [1, 3], "times": ["07:00"], "from_date": str(date(first.year,
              first.month, 1)), "to_date": str(last_day), "capacity": 5},
        headers=owner.headers)
    assert created.status == 201, await created.text()
    items: list[Any] = (await created.json())["items"]
    return items


def starting(timeslots: list[Any], day: date) -> dict[str, Any]:
    [timeslot] = [t for t in timeslots
                  if datetime.fromisoformat(t["starts_at"]).astimezone(SEOUL).date() == day]
    return dict(timeslot)


async def test_a_month_repeats_into_the_matching_weeks_of_the_next(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    source, target = months_ahead(1), months_ahead(2)
    owner = await sign_up("owner")
    timeslots = await weekly_program(client, owner, source, target)
    only_once = await new_program(client, owner, (await new_center(client, owner))["id"],
                                  price_coupons=PRICE)
    lone = await client.post(f"/api/v1/programs/{only_once['id']}/timeslots", json={
        "starts_at": datetime.combine(nth_weekday(source, 4, 2), datetime.min.time(),
                                      SEOUL).replace(hour=18).isoformat(),
        "capacity": 5}, headers=owner.headers)
    user = await sign_up()
    await fund(user.id, PRICE * 6)
    booked = [
        starting(timeslots, nth_weekday(source, 0, 0)),  # 1st Monday
        starting(timeslots, nth_weekday(source, 2, 1)),  # 2nd Wednesday
        await lone.json(),                               # 3rd Friday, never again
    ]
    sources = []
    for timeslot in booked:
        response = await reserve(client, user, timeslot["id"], Prefer="wait=8")
        assert response.status == 201, await response.text()
        sources.append((await response.json())["id"])

    response = await client.post("/api/v1/me/calendar/repeat", json={
        "from_month": label(source), "to_month": label(target)}, headers=user.headers)
    assert response.status == 202, await response.text()
    items = (await response.json())["items"]
    assert [item["source_reservation_id"] for item in items] == sources
    expected = [starting(timeslots, nth_weekday(target, 0, 0))["id"],
                starting(timeslots, nth_weekday(target, 2, 1))["id"]]
    assert [item["timeslot_id"] for item in items[:2]] == expected
    assert items[2] == {"source_reservation_id": sources[2], "timeslot_id": None,
                        "command_id": None, "reason": "no_matching_timeslot"}
    for item in items[:2]:
        command = await (await client.get(f"/api/v1/commands/{item['command_id']}",
                                          headers={**user.headers, "Prefer": "wait=8"})).json()
        assert command["status"] == "succeeded", command
        repeated = await Reservation.get(id=command["result"]["reservation_id"])
        assert repeated.timeslot_id == item["timeslot_id"]  # type: ignore[attr-defined]
        assert repeated.price_coupons == PRICE

    # Asked again, each is an ordinary booking of a seat the person holds.
    again = await client.post("/api/v1/me/calendar/repeat", json={
        "from_month": label(source), "to_month": label(target)}, headers=user.headers)
    for item in (await again.json())["items"][:2]:
        command = await (await client.get(f"/api/v1/commands/{item['command_id']}",
                                          headers={**user.headers, "Prefer": "wait=8"})).json()
        assert command["error"]["code"] == "already_reserved"


async def test_parallel_sessions_repeat_into_one_with_a_seat_left(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    source, target = months_ahead(1), months_ahead(2)
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"],
                                price_coupons=PRICE, parallel_sessions=True)

    async def session(day: date) -> int:
        created = await client.post(f"/api/v1/programs/{program['id']}/timeslots", json={
            "starts_at": datetime.combine(day, datetime.min.time(), SEOUL).replace(
                hour=9).isoformat(), "capacity": 1}, headers=owner.headers)
        assert created.status == 201, await created.text()
        timeslot_id: int = (await created.json())["id"]
        return timeslot_id

    booked = await session(nth_weekday(source, 1, 1))
    taken, free = [await session(nth_weekday(target, 1, 1)) for _ in range(2)]
    other, user = await sign_up(), await sign_up()
    await fund(other.id, PRICE)
    await fund(user.id, PRICE * 2)
    assert (await reserve(client, other, taken, Prefer="wait=8")).status == 201
    assert (await reserve(client, user, booked, Prefer="wait=8")).status == 201
    response = await client.post("/api/v1/me/calendar/repeat", json={
        "from_month": label(source), "to_month": label(target)}, headers=user.headers)
    assert response.status == 202, await response.text()
    [item] = (await response.json())["items"]
    assert item["timeslot_id"] == free


async def test_an_empty_month_repeats_into_an_empty_list(
    client: Client, sign_up: Any,
) -> None:
    user = await sign_up()
    response = await client.post("/api/v1/me/calendar/repeat", json={
        "from_month": label(months_ahead(5)), "to_month": label(months_ahead(6))},
        headers=user.headers)
    assert response.status == 202
    assert await response.json() == {"items": []}


@pytest.mark.parametrize("body", [
    {"from_month": "2026-13", "to_month": "2027-01"},
    {"from_month": "2026-12", "to_month": "2026-12"},
    {"from_month": "2026-12"},
    {"from_month": 202612, "to_month": "2027-01"},
    {"from_month": "2026-12-01", "to_month": "2027-01"},
])
async def test_months_that_are_not_two_months_are_400(
    client: Client, sign_up: Any, body: dict[str, Any],
) -> None:
    user = await sign_up()
    response = await client.post("/api/v1/me/calendar/repeat", json=body,
                                 headers=user.headers)
    assert response.status == 400, await response.text()
