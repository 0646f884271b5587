"""The personal calendar and its iCalendar feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.booking.models import Reservation
from fitnus.clock import system_clock
from fitnus.config import Settings, load_settings
from fitnus.errors import ConfigurationError
from tests.e2e.test_booking import PRICE, fund, open_session, reserve

Client = TestClient[Any, Any]


async def booked_user(client: Client, sign_up: Any, days: list[int]) -> tuple[Any, list[int]]:
    user = await sign_up()
    await fund(user.id, PRICE * len(days))
    reservation_ids = []
    for day in days:
        session = await open_session(client, sign_up, capacity=3, days=day)
        response = await reserve(client, user, session.timeslot_id, Prefer="wait=8")
        assert response.status == 201
        reservation_ids.append((await response.json())["id"])
    return user, reservation_ids


def window(days: int) -> str:
    start = system_clock.now()
    return (f"from={quote(start.isoformat())}"
            f"&to={quote((start + timedelta(days=days)).isoformat())}")


@pytest.mark.portable
async def test_the_calendar_lists_reservations_by_start(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, ids = await booked_user(client, sign_up, [9, 2, 5])
    calendar = await (await client.get(f"/api/v1/me/calendar?{window(20)}",
                                       headers=user.headers)).json()
    assert [item["id"] for item in calendar["items"]] == [ids[1], ids[2], ids[0]]
    first = calendar["items"][0]
    assert first["kind"] == "reservation"
    assert "아침 요가" in first["title"]
    assert first["starts_at"].endswith("+09:00")
    short = await (await client.get(f"/api/v1/me/calendar?{window(4)}",
                                    headers=user.headers)).json()
    assert [item["id"] for item in short["items"]] == [ids[1]]


async def test_cancelled_reservations_leave_the_calendar_but_not_the_list(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, [reservation_id] = await booked_user(client, sign_up, [4])
    await client.delete(f"/api/v1/reservations/{reservation_id}", headers=user.headers)
    calendar = await (await client.get("/api/v1/me/calendar", headers=user.headers)).json()
    assert calendar["items"] == []
    listed = await (await client.get("/api/v1/me/reservations", headers=user.headers)).json()
    assert [(r["id"], r["status"]) for r in listed["items"]] == [(reservation_id, "cancelled")]


@pytest.mark.portable
async def test_my_reservations_come_in_pages_by_start(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, ids = await booked_user(client, sign_up, [6, 2, 4])
    # A cancelled seat and a new one in the same session start together: the id orders them.
    await client.delete(f"/api/v1/reservations/{ids[1]}", headers=user.headers)
    timeslot_id = (await Reservation.get(id=ids[1])).timeslot_id  # type: ignore[attr-defined]
    rebooked = await reserve(client, user, timeslot_id, Prefer="wait=8")
    assert rebooked.status == 201
    expected = [ids[1], (await rebooked.json())["id"], ids[2], ids[0]]

    async def page(query: str) -> dict[str, Any]:
        response = await client.get(f"/api/v1/me/reservations?{window(10)}&{query}",
                                    headers=user.headers)
        assert response.status == 200, await response.text()
        return await response.json()

    first = await page("limit=2")
    second = await page(f"limit=2&cursor={first['next_cursor']}")
    assert [r["id"] for r in first["items"] + second["items"]] == expected
    assert second["next_cursor"] is None
    whole = await page("")
    assert ([r["id"] for r in whole["items"]], whole["next_cursor"]) == (expected, None)
    for bad in ("limit=0", "limit=101", "cursor=not-ours"):
        response = await client.get(f"/api/v1/me/reservations?{bad}", headers=user.headers)
        assert response.status == 400, bad


@pytest.mark.parametrize("query", [
    "from=2030-01-02T00:00:00%2B09:00&to=2030-01-01T00:00:00%2B09:00",
    "from=2030-01-01T00:00:00%2B09:00&to=2032-01-01T00:00:00%2B09:00",
    "from=yesterday", "from=2030-01-01T00:00:00",
])
async def test_bad_ranges_are_400(client: Client, sign_up: Any, query: str) -> None:
    user = await sign_up()
    response = await client.get(f"/api/v1/me/calendar?{query}", headers=user.headers)
    assert response.status == 400


async def test_the_ical_feed_serves_the_owner_and_can_be_revoked(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, _ = await booked_user(client, sign_up, [3])
    await booked_user(client, sign_up, [6])  # someone else's session stays out of the feed
    feed = await (await client.post("/api/v1/me/calendar/feed", headers=user.headers)).json()
    assert feed["url"].endswith(feed["token"])
    response = await client.get(f"/api/v1/me/calendar.ics?token={feed['token']}")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    body = await response.text()
    assert body.count("BEGIN:VEVENT") == 1  # the other person's session is not in it
    assert "아침 요가" in body

    rotated = await (await client.post("/api/v1/me/calendar/feed", headers=user.headers)).json()
    assert (await client.get(f"/api/v1/me/calendar.ics?token={feed['token']}")).status == 401
    assert (await client.get(f"/api/v1/me/calendar.ics?token={rotated['token']}")).status == 200
    assert (await client.delete("/api/v1/me/calendar/feed", headers=user.headers)).status == 204
    assert (await client.get(f"/api/v1/me/calendar.ics?token={rotated['token']}")).status == 401
    assert (await client.get("/api/v1/me/calendar.ics")).status == 400


async def test_the_feed_url_is_under_the_public_base_url_whatever_the_host_header(
    aiohttp_client: Any, make_app: Any, sign_up: Any
) -> None:
    user = await sign_up()
    public = await aiohttp_client(make_app(public_base_url="https://fitnus.example.com/app"))
    response = await public.post("/api/v1/me/calendar/feed",
                                 headers={**user.headers, "Host": "attacker.example"})
    feed = await response.json()
    assert feed["url"] == (
        f"https://fitnus.example.com/app/api/v1/me/calendar.ics?token={feed['token']}"
    )


async def test_without_a_public_base_url_the_feed_url_follows_the_request(
    client: Client, sign_up: Any
) -> None:
    user = await sign_up()
    feed = await (await client.post("/api/v1/me/calendar/feed", headers=user.headers)).json()
    assert feed["url"] == str(client.make_url(f"/api/v1/me/calendar.ics?token={feed['token']}"))


@pytest.mark.parametrize(("value", "read"), [
    ("https://fitnus.example.com/", "https://fitnus.example.com"),
    ("http://127.0.0.1:8080/fitnus", "http://127.0.0.1:8080/fitnus"),
])
def test_public_base_url_is_read_from_the_environment(
    settings: Settings, value: str, read: str
) -> None:
    environment = {"JWT_SECRET": settings.jwt_secret, "PUBLIC_BASE_URL": value}
    assert load_settings(environment).public_base_url == read


@pytest.mark.parametrize("value", ["fitnus.example.com", "ftp://fitnus.example.com",
                                   "https://", "https://fitnus.example.com/?a=1"])
def test_a_public_base_url_that_is_not_one_is_refused(settings: Settings, value: str) -> None:
    with pytest.raises(ConfigurationError):
        load_settings({"JWT_SECRET": settings.jwt_secret, "PUBLIC_BASE_URL": value})
