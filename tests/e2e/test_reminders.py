"""Reminders before a reserved session, with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.booking import reminders
from fitnus.booking.models import Reservation
from fitnus.booking.reminders import REMINDER, send_due_reminders
from fitnus.clock import ManualClock
from fitnus.notifications.models import Notification
from tests.e2e.test_booking import book

Client = TestClient[Any, Any]
HOUR = timedelta(hours=1)
SEOUL = ZoneInfo("Asia/Seoul")


async def reminded(user_id: int) -> list[Notification]:
    return await Notification.filter(user_id=user_id, type=REMINDER)


async def booked(client: Client, sign_up: Any) -> tuple[Any, dict[str, Any], datetime]:
    _, user, reservation = await book(client, sign_up)
    starts_at = (await Reservation.get(id=reservation["id"])).starts_at
    return user, reservation, starts_at


async def scan_at(moment: datetime, lead: timedelta = HOUR) -> None:
    await send_due_reminders(lead=lead, zone=SEOUL, clock=ManualClock(moment))


async def test_a_reminder_is_sent_once_within_its_minute(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, reservation, starts_at = await booked(client, sign_up)
    due = starts_at - HOUR
    await scan_at(due - timedelta(seconds=30))
    assert await reminded(user.id) == []
    await scan_at(due + timedelta(seconds=20))
    await scan_at(due + timedelta(seconds=50))
    [reminder] = await reminded(user.id)
    assert reminder.payload["reservation_id"] == reservation["id"]
    assert reminder.created_at - due <= timedelta(minutes=1)


async def test_the_reminder_tells_the_start_in_the_service_time_zone(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, _, starts_at = await booked(client, sign_up)
    await scan_at(starts_at - HOUR)
    listed = await client.get("/api/v1/notifications", headers=user.headers)
    [reminder] = [item for item in (await listed.json())["items"] if item["type"] == REMINDER]
    assert reminder["payload"]["starts_at"].endswith("+09:00")
    assert datetime.fromisoformat(reminder["payload"]["starts_at"]) == starts_at
    assert reminder["created_at"].endswith("+09:00")


async def test_none_for_a_cancelled_reservation(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, reservation, starts_at = await booked(client, sign_up)
    await client.delete(f"/api/v1/reservations/{reservation['id']}", headers=user.headers)
    await scan_at(starts_at - HOUR + timedelta(seconds=5))
    assert await reminded(user.id) == []


async def test_two_schedulers_at_once_send_one(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, _, starts_at = await booked(client, sign_up)
    moment = starts_at - HOUR + timedelta(seconds=1)
    await asyncio.gather(scan_at(moment), scan_at(moment), scan_at(moment))
    assert len(await reminded(user.id)) == 1


async def test_a_restart_spanning_the_due_minute_still_sends(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, _, starts_at = await booked(client, sign_up)
    # No scan ran at the due time; the next one, a minute later, catches up.
    await scan_at(starts_at - HOUR + timedelta(minutes=1))
    assert len(await reminded(user.id)) == 1


@pytest.mark.portable
async def test_a_scheduler_off_for_five_minutes_across_the_due_time_sends_on_the_first_scan_after(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, reservation, starts_at = await booked(client, sign_up)
    due = starts_at - HOUR
    await scan_at(due - timedelta(minutes=1))
    # The scheduler is down from here until five minutes after the due time.
    first_scan_after = due + timedelta(minutes=5)
    await scan_at(first_scan_after)
    await scan_at(first_scan_after + timedelta(minutes=1))
    [reminder] = await reminded(user.id)
    assert reminder.payload["reservation_id"] == reservation["id"]
    assert reminder.created_at == first_scan_after
    assert (await Reservation.get(id=reservation["id"])).reminded_at == first_scan_after


async def test_a_reservation_that_has_started_gets_none(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, _, starts_at = await booked(client, sign_up)
    # Every scan owed this reminder was missed; once the session starts it is too late.
    await scan_at(starts_at)
    await scan_at(starts_at + timedelta(minutes=5))
    assert await reminded(user.id) == []


async def test_a_backlog_longer_than_a_page_is_sent_in_one_scan(
    client: Client, sign_up: Any, worker: dramatiq.Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reminders, "REMINDER_PAGE", 2)
    starts_at = (await booked(client, sign_up))[2]
    people = [(await book(client, sign_up, starts_at=starts_at.isoformat()))[1]
              for _ in range(4)]
    await scan_at(starts_at - timedelta(minutes=10))
    for person in people:
        assert len(await reminded(person.id)) == 1


@pytest.mark.parametrize("lead_minutes", [30, 120])
async def test_the_lead_time_is_configurable(
    client: Client, sign_up: Any, worker: dramatiq.Worker, lead_minutes: int
) -> None:
    user, _, starts_at = await booked(client, sign_up)
    lead = timedelta(minutes=lead_minutes)
    await scan_at(starts_at - lead - timedelta(seconds=10), lead=lead)
    assert await reminded(user.id) == []
    await scan_at(starts_at - lead + timedelta(seconds=10), lead=lead)
    assert len(await reminded(user.id)) == 1
