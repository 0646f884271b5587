"""Every time the API shows is in the service time zone; the iCalendar feed is UTC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from aiohttp.test_utils import TestClient

from fitnus.booking.models import Reservation
from fitnus.booking.reminders import send_due_reminders
from fitnus.clock import ManualClock
from tests.e2e.test_booking import book

Client = TestClient[Any, Any]
MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
ICAL_MOMENT = re.compile(r"^(DTSTART|DTEND|DTSTAMP)[;:](.*)$", re.MULTILINE)


def moments(value: Any) -> Iterator[str]:
    """Every RFC 3339 time in a JSON document, however deep."""
    if isinstance(value, dict):
        for item in value.values():
            yield from moments(item)
    elif isinstance(value, list):
        for item in value:
            yield from moments(item)
    elif isinstance(value, str) and MOMENT.match(value):
        yield value


async def test_every_time_the_api_shows_is_in_the_service_time_zone(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session, user, reservation = await book(client, sign_up)
    starts_at = (await Reservation.get(id=reservation["id"])).starts_at
    await send_due_reminders(lead=timedelta(hours=1), zone=ZoneInfo("Asia/Seoul"),
                             clock=ManualClock(starts_at - timedelta(minutes=30)))
    timeslot = await (await client.get(f"/api/v1/timeslots/{session.timeslot_id}")).json()
    calendar = await (await client.get("/api/v1/me/calendar", headers=user.headers)).json()
    paths = [
        f"/api/v1/timeslots/{session.timeslot_id}",
        f"/api/v1/programs/{timeslot['program_id']}/timeslots",
        f"/api/v1/centers/{calendar['items'][0]['center_id']}",
        f"/api/v1/reservations/{reservation['id']}",
        "/api/v1/me/reservations",
        "/api/v1/me/calendar",
        "/api/v1/me/wallet/ledger",
        "/api/v1/notifications",
    ]
    shown = [moment for path in paths
             for moment in moments(await (await client.get(path, headers=user.headers)).json())]
    notifications = await (await client.get("/api/v1/notifications",
                                            headers=user.headers)).json()
    assert "reservation.reminder" in {item["type"] for item in notifications["items"]}
    assert len(shown) >= 10
    assert [moment for moment in shown if not moment.endswith("+09:00")] == []


async def test_the_ical_feed_stays_in_utc(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    _, user, _ = await book(client, sign_up)
    feed = await (await client.post("/api/v1/me/calendar/feed", headers=user.headers)).json()
    body = await (await client.get(f"/api/v1/me/calendar.ics?token={feed['token']}")).text()
    stamps = [value for _, value in ICAL_MOMENT.findall(body.replace("\r\n", "\n"))]
    assert len(stamps) == 3
    assert all(value.endswith("Z") for value in stamps), stamps
