"""A center closed, or a session withdrawn, with people booked: their seats are
cancelled through the timeslot's queue with a full refund whatever the 24 h
rule says, they are told why, and no reminder goes out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from fitnus.booking.models import Reservation
from fitnus.booking.reminders import REMINDER, send_due_reminders
from fitnus.booking.service import request_withdrawals, timeslot_queue, withdrawn_with_seats
from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.wallet.models import Wallet
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, book, fund, open_session, reserve
from tests.e2e.test_centers import in_days

Client = TestClient[Any, Any]


async def cancelled_with(user_id: int, reservation_id: int) -> dict[str, Any] | None:
    """The payload of the person's reservation.cancelled event, once written."""
    for notification in await Notification.filter(user_id=user_id,
                                                   type="reservation.cancelled"):
        if notification.payload["reservation_id"] == reservation_id:
            return notification.payload
    return None


async def refunded_and_told(user_id: int, reservation_id: int) -> bool:
    return await cancelled_with(user_id, reservation_id) is not None


async def test_closing_a_center_cancels_its_future_bookings_with_a_full_refund(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    soon = (system_clock.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    session, early, within_a_day = await book(client, sign_up, starts_at=soon.isoformat())
    timeslot = await Timeslot.get(id=session.timeslot_id).prefetch_related("program")
    later = await client.post(f"/api/v1/programs/{timeslot.program.id}/timeslots",
                              json={"starts_at": in_days(5), "capacity": 5},
                              headers=session.owner.headers)
    late = await sign_up()
    await fund(late.id, PRICE)
    far = await (await reserve(client, late, (await later.json())["id"],
                               Prefer="wait=8")).json()

    closed = await client.delete(f"/api/v1/centers/{timeslot.program.center_id}",  # type: ignore[attr-defined]
                                 headers=session.owner.headers)
    assert closed.status == 204
    for person, reservation in ((early, within_a_day), (late, far)):
        await eventually(lambda p=person, r=reservation: refunded_and_told(p.id, r["id"]))
        told = await cancelled_with(person.id, reservation["id"])
        assert told == {"reservation_id": reservation["id"], "refunded_coupons": PRICE,
                        "refund_reason": "center_closed",
                        "timeslot_id": reservation["timeslot_id"], "reason": "center_closed"}
        assert (await Wallet.get(user_id=person.id)).balance == PRICE
        assert not (await Reservation.get(id=reservation["id"])).active
    assert (await Timeslot.get(id=session.timeslot_id)).reserved == 0
    # The session two hours out was owed a reminder an hour before: none goes out.
    await send_due_reminders(lead=timedelta(hours=3), zone=ZoneInfo("Asia/Seoul"),
                             clock=system_clock)
    assert not await Notification.filter(user_id=early.id, type=REMINDER).exists()


async def test_an_owner_withdraws_a_session_and_its_people_are_refunded(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, user, reservation = await book(client, sign_up)
    stranger = await sign_up("owner")
    path = f"/api/v1/timeslots/{session.timeslot_id}"
    assert (await client.delete(path, headers=stranger.headers)).status == 403
    assert (await client.delete(path, headers=user.headers)).status == 403
    withdrawn = await client.delete(path, headers=session.owner.headers)
    assert withdrawn.status == 204, await withdrawn.text()
    await eventually(lambda: refunded_and_told(user.id, reservation["id"]))
    told = await cancelled_with(user.id, reservation["id"])
    assert told is not None
    assert told["reason"] == "timeslot_withdrawn"
    assert (await Wallet.get(user_id=user.id)).balance == PRICE
    # Gone from the timetable: no reads, no bookings, no second withdrawal.
    assert (await client.get(path)).status == 404
    # This web process remembers the timeslot from the booking; the worker refuses.
    again = await reserve(client, user, session.timeslot_id, Prefer="wait=8")
    assert again.status == 409
    assert (await again.json())["code"] == "timeslot_closed"
    assert (await client.delete(path, headers=session.owner.headers)).status == 404


async def test_a_session_that_has_started_cannot_be_withdrawn(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, _, reservation = await book(client, sign_up)
    past = system_clock.now() - timedelta(minutes=5)
    await Timeslot.filter(id=session.timeslot_id).update(starts_at=past)
    response = await client.delete(f"/api/v1/timeslots/{session.timeslot_id}",
                                   headers=session.owner.headers)
    assert response.status == 409
    assert (await response.json())["code"] == "already_started"
    assert (await Reservation.get(id=reservation["id"])).active


async def test_a_withdrawal_whose_request_was_lost_is_swept_up(
    client: Client, sign_up: Any, redis: Redis, settings: Settings, worker: dramatiq.Worker,
    messages: Any,
) -> None:
    """The web process died between its commit and queueing the cancellations."""
    session, user, reservation = await book(client, sign_up)
    await Timeslot.filter(id=session.timeslot_id).update(
        withdrawn_at=system_clock.now(), withdrawal_reason="timeslot_withdrawn")
    assert session.timeslot_id in await withdrawn_with_seats()
    await request_withdrawals(await withdrawn_with_seats(), redis=redis,
                              keys=Keys(settings.redis_key_prefix),
                              schedule_drain=messages.schedule_drain)
    await eventually(lambda: refunded_and_told(user.id, reservation["id"]))
    assert session.timeslot_id not in await withdrawn_with_seats()
    assert (await Wallet.get(user_id=user.id)).balance == PRICE


async def test_a_withdrawal_run_twice_refunds_once(
    client: Client, sign_up: Any, redis: Redis, settings: Settings, worker: dramatiq.Worker,
    messages: Any,
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    await fund(user.id, PRICE)
    reservation = await (await reserve(client, user, session.timeslot_id,
                                       Prefer="wait=8")).json()
    assert (await client.delete(f"/api/v1/timeslots/{session.timeslot_id}",
                                headers=session.owner.headers)).status == 204
    await eventually(lambda: refunded_and_told(user.id, reservation["id"]))
    await request_withdrawals([session.timeslot_id], redis=redis,
                              keys=Keys(settings.redis_key_prefix),
                              schedule_drain=messages.schedule_drain)
    queue = timeslot_queue(redis, Keys(settings.redis_key_prefix))

    async def drained() -> bool:
        return (await queue.length(session.timeslot_id) == 0
                and not await queue.leased(session.timeslot_id))

    await eventually(drained)
    assert (await Wallet.get(user_id=user.id)).balance == PRICE
    assert await Notification.filter(user_id=user.id, type="reservation.cancelled").count() == 1
