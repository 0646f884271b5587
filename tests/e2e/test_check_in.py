"""Check-in at the door with the kiosk's rotating code, and no-shows after
the session: each seat ends attended, no-show or cancelled, exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
import pyotp
from aiohttp.test_utils import TestClient

from fitnus.attendance.service import mark_no_shows
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Center, Timeslot
from fitnus.clock import ManualClock, system_clock
from tests.e2e.test_booking import Session, book
from tests.e2e.test_cancellation_policy import center_of, hours_ahead

Client = TestClient[Any, Any]


async def kiosk(client: Client, session: Session) -> str:
    response = await client.get(f"/api/v1/centers/{await center_of(session)}/check-in-code",
                                headers=session.owner.headers)
    assert response.status == 200, await response.text()
    shown = await response.json()
    assert 1 <= shown["valid_for_seconds"] <= 30
    return str(shown["code"])


async def check_in(client: Client, user: Any, reservation_id: int, code: str) -> Any:
    return await client.post(f"/api/v1/reservations/{reservation_id}/check-in",
                             json={"code": code}, headers=user.headers)


async def test_a_person_checks_in_once_with_the_code_the_kiosk_shows(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, user, reservation = await book(client, sign_up, starts_at=hours_ahead(0.25))
    code = await kiosk(client, session)
    response = await check_in(client, user, reservation["id"], code)
    assert response.status == 200, await response.text()
    assert await response.json() == {"status": "attended"}
    again = await check_in(client, user, reservation["id"], code)
    assert (again.status, (await again.json())["code"]) == (409, "already_checked_in")
    attendance = await client.get(f"/api/v1/timeslots/{session.timeslot_id}/attendance",
                                  headers=session.owner.headers)
    [attendee] = (await attendance.json())["items"]
    assert (attendee["reservation_id"], attendee["status"]) == (reservation["id"], "attended")
    # Checked in, the seat is used: no cancelling it.
    cancelled = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                    headers=user.headers)
    assert (cancelled.status, (await cancelled.json())["code"]) == (409, "already_started")


async def test_stale_future_and_other_centers_codes_are_refused(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, user, reservation = await book(client, sign_up, starts_at=hours_ahead(0.25))
    await kiosk(client, session)
    secret = (await Center.get(id=await center_of(session))).check_in_secret
    assert secret is not None
    now = system_clock.now()
    other, _, _ = await book(client, sign_up, starts_at=hours_ahead(0.25))
    for code in (pyotp.TOTP(secret).at(now - timedelta(seconds=90)),
                 pyotp.TOTP(secret).at(now + timedelta(seconds=90)),
                 await kiosk(client, other)):
        response = await check_in(client, user, reservation["id"], code)
        assert (response.status, (await response.json())["code"]) == (400, "invalid_code")
    for malformed in ("12345", "abcdef", 123456):
        response = await check_in(client, user, reservation["id"], malformed)  # type: ignore[arg-type]
        assert response.status == 400
    assert (await Reservation.get(id=reservation["id"])).status is ReservationStatus.CONFIRMED


async def test_check_in_opens_half_an_hour_before_the_start(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, user, reservation = await book(client, sign_up, starts_at=hours_ahead(2))
    response = await check_in(client, user, reservation["id"], await kiosk(client, session))
    assert (response.status, (await response.json())["code"]) == (409, "check_in_closed")


async def test_only_its_person_checks_in_and_only_the_owner_reads_codes_and_attendance(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, _, reservation = await book(client, sign_up, starts_at=hours_ahead(0.25))
    stranger = await sign_up()
    code = await kiosk(client, session)
    assert (await check_in(client, stranger, reservation["id"], code)).status == 404
    center_id = await center_of(session)
    for path in (f"/api/v1/centers/{center_id}/check-in-code",
                 f"/api/v1/timeslots/{session.timeslot_id}/attendance"):
        assert (await client.get(path, headers=stranger.headers)).status == 403
        assert (await client.get(path)).status == 401


async def test_seats_not_checked_into_become_no_shows_half_an_hour_after_the_end(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    came, came_user, came_reservation = await book(client, sign_up,
                                                   starts_at=hours_ahead(0.25))
    assert (await check_in(client, came_user, came_reservation["id"],
                           await kiosk(client, came))).status == 200
    missed, _, missed_reservation = await book(client, sign_up, starts_at=hours_ahead(0.25))
    ended = (await Timeslot.get(id=missed.timeslot_id)).ends_at
    await mark_no_shows(clock=ManualClock(ended + timedelta(minutes=29)))
    assert (await Reservation.get(id=missed_reservation["id"])).status is (
        ReservationStatus.CONFIRMED)
    await mark_no_shows(clock=ManualClock(ended + timedelta(minutes=30)))
    assert (await Reservation.get(id=missed_reservation["id"])).status is (
        ReservationStatus.NO_SHOW)
    assert (await Reservation.get(id=came_reservation["id"])).status is (
        ReservationStatus.ATTENDED)
    await mark_no_shows(clock=ManualClock(ended + timedelta(minutes=31)))
    assert (await Reservation.get(id=missed_reservation["id"])).status is (
        ReservationStatus.NO_SHOW)
