"""Moving a booking: one decision through the new timeslot's queue, which frees
the old seat in the same transaction; either the person holds the new seat
(the price difference charged or refunded) or nothing changed."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.booking import batches
from fitnus.booking.guards import change_seat_count, free_seat
from fitnus.booking.models import Reservation, ReservationStatus, seat_paid_for
from fitnus.booking.outcomes import Decisions
from fitnus.booking.seating import seats
from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from fitnus.config import Settings
from fitnus.wallet.models import LedgerKind, Wallet
from fitnus.wallet.service import post_entry
from tests.e2e.test_booking import PRICE, fund, open_session, reserve, users_with_tokens
from tests.e2e.test_booking_races import decided, ledgers_agree, seats_agree

Client = TestClient[Any, Any]


async def move(client: Client, account: Any, reservation_id: int, timeslot_id: int,
               **headers: str) -> Any:
    return await client.post(f"/api/v1/reservations/{reservation_id}/move",
                             json={"timeslot_id": timeslot_id},
                             headers={**account.headers, **headers})


async def booked(client: Client, sign_up: Any, *, coupons: int, **session: Any
                 ) -> tuple[Any, dict[str, Any]]:
    """A person holding a seat in a new session, with ``coupons`` left over."""
    timeslot = await open_session(client, sign_up, **{"capacity": 5, **session})
    user = await sign_up()
    price = session.get("price", PRICE)
    await fund(user.id, price + coupons)
    response = await reserve(client, user, timeslot.timeslot_id, Prefer="wait=8")
    assert response.status == 201, await response.text()
    return user, await response.json()


async def balance(user_id: int) -> int:
    return (await Wallet.get(user_id=user_id)).balance


async def test_a_move_to_a_dearer_session_charges_the_difference_and_frees_the_old_seat(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=5)
    dearer = await open_session(client, sign_up, capacity=5, days=4, price=PRICE + 5)
    response = await move(client, user, old["id"], dearer.timeslot_id, Prefer="wait=8")
    assert response.status == 200, await response.text()
    new = await response.json()
    assert (new["timeslot_id"], new["status"], new["price_coupons"]) == (
        dearer.timeslot_id, "confirmed", PRICE + 5)
    assert await balance(user.id) == 0
    was = await Reservation.get(id=old["id"])
    assert (was.status, was.active) == (ReservationStatus.CANCELLED, None)
    assert (await Timeslot.get(id=old["timeslot_id"])).reserved == 0
    assert (await Timeslot.get(id=dearer.timeslot_id)).reserved == 1
    assert await ledgers_agree([user.id]) == []


async def test_a_move_to_a_cheaper_session_refunds_the_difference(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=0)
    cheaper = await open_session(client, sign_up, capacity=5, days=4, price=PRICE - 4)
    response = await move(client, user, old["id"], cheaper.timeslot_id, Prefer="wait=8")
    assert response.status == 200, await response.text()
    assert await balance(user.id) == 4


async def test_without_prefer_a_move_is_accepted_with_its_place_in_line(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=0)
    target = await open_session(client, sign_up, capacity=5, days=4)
    response = await move(client, user, old["id"], target.timeslot_id)
    assert response.status == 202
    accepted = await response.json()
    command = await (await client.get(f"/api/v1/commands/{accepted['command_id']}",
                                      headers={**user.headers, "Prefer": "wait=8"})).json()
    assert command["status"] == "succeeded"
    assert command["result"]["moved_from"] == old["id"]


async def refused(response: Any, code: str) -> None:
    assert response.status == 409, await response.text()
    assert (await response.json())["code"] == code


async def unchanged(user_id: int, old: dict[str, Any], coupons: int) -> None:
    assert (await Reservation.get(id=old["id"])).active
    assert await Reservation.filter(user_id=user_id, active=True).count() == 1
    assert await balance(user_id) == coupons


async def test_a_move_into_a_full_session_is_sold_out_and_changes_nothing(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=0)
    _, taken = await booked(client, sign_up, coupons=0, capacity=1, days=4)
    await refused(await move(client, user, old["id"], taken["timeslot_id"], Prefer="wait=8"),
                  "sold_out")
    await unchanged(user.id, old, 0)


async def test_a_move_that_cannot_pay_the_difference_changes_nothing(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=2)
    dearer = await open_session(client, sign_up, capacity=5, days=4, price=PRICE + 5)
    await refused(await move(client, user, old["id"], dearer.timeslot_id, Prefer="wait=8"),
                  "insufficient_coupons")
    await unchanged(user.id, old, 2)


async def test_a_move_clashes_with_other_bookings_but_not_with_the_one_it_moves(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=PRICE, days=3, hour=10)
    other = await open_session(client, sign_up, capacity=5, days=5, hour=10)
    assert (await reserve(client, user, other.timeslot_id, Prefer="wait=8")).status == 201
    clash = await open_session(client, sign_up, capacity=5, days=5, hour=10)
    await refused(await move(client, user, old["id"], clash.timeslot_id, Prefer="wait=8"),
                  "schedule_conflict")
    # Half an hour later than the booking it replaces: overlaps only that one.
    starts = (await Timeslot.get(id=old["timeslot_id"])).starts_at + timedelta(minutes=30)
    overlapping_itself = await open_session(client, sign_up, capacity=5,
                                            starts_at=starts.isoformat())
    response = await move(client, user, old["id"], overlapping_itself.timeslot_id,
                          Prefer="wait=8")
    assert response.status == 200, await response.text()


async def test_a_move_within_a_day_of_the_start_or_after_it_is_refused(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    soon = (system_clock.now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    user, old = await booked(client, sign_up, coupons=0, starts_at=soon.isoformat())
    target = await open_session(client, sign_up, capacity=5, days=4)
    await refused(await move(client, user, old["id"], target.timeslot_id, Prefer="wait=8"),
                  "move_window_closed")
    past = system_clock.now() - timedelta(minutes=5)
    await Reservation.filter(id=old["id"]).update(starts_at=past)
    await refused(await move(client, user, old["id"], target.timeslot_id), "already_started")
    await unchanged(user.id, old, 0)


async def test_a_move_keeps_to_the_notice_the_booking_was_made_under(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    """Booked 30 h ahead under a center's 48 h notice: a cancellation would
    refund nothing, so moving it to a later day (and cancelling that) must
    not get around it."""
    ahead = (system_clock.now() + timedelta(hours=30)).replace(second=0, microsecond=0)
    user, old = await booked(client, sign_up, coupons=0, starts_at=ahead.isoformat())
    await Reservation.filter(id=old["id"]).update(policy_full_refund_hours=48)
    target = await open_session(client, sign_up, capacity=5, days=4)
    await refused(await move(client, user, old["id"], target.timeslot_id), "move_window_closed")
    await Reservation.filter(id=old["id"]).update(policy_full_refund_hours=24)
    moved = await move(client, user, old["id"], target.timeslot_id, Prefer="wait=8")
    assert moved.status == 200, await moved.text()


async def test_nobody_moves_another_persons_booking(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    user, old = await booked(client, sign_up, coupons=0)
    stranger = await sign_up()
    target = await open_session(client, sign_up, capacity=5, days=4)
    assert (await move(client, stranger, old["id"], target.timeslot_id)).status == 404
    assert (await move(client, user, old["id"], 2**60)).status == 404
    for body in ({}, {"timeslot_id": "x"}, {"timeslot_id": 0}):
        response = await client.post(f"/api/v1/reservations/{old['id']}/move", json=body,
                                     headers=user.headers)
        assert response.status == 400
    await unchanged(user.id, old, 0)


# --- The storm: moves between two nearly full sessions, both ways at once --------------

CAPACITY, HELD, COPIES, WAVES = 30, 27, 2, 2


@dataclass
class MoveStorm:
    seats_per_person: dict[int, int]
    unbalanced: list[int]
    miscounted: list[int]

    def wrong_seat_counts(self) -> list[int]:
        return sorted(user for user, seats in self.seats_per_person.items() if seats != 1)


async def moves_storm(client: Client, sign_up: Any, settings: Settings) -> MoveStorm:
    """Two sessions, 27 of 30 seats taken in each; in waves, everyone asks,
    twice and at once, to move to the other. Each must end with one seat,
    and each session's count must be its live reservations."""
    sessions = [await open_session(client, sign_up, capacity=CAPACITY, days=3 + n)
                for n in range(2)]
    other = {sessions[0].timeslot_id: sessions[1].timeslot_id,
             sessions[1].timeslot_id: sessions[0].timeslot_id}
    people = await users_with_tokens(settings, 2 * HELD, coupons=PRICE)
    for n, (_, headers) in enumerate(people):
        response = await client.post("/api/v1/reservations",
                                     json={"timeslot_id": sessions[n % 2].timeslot_id},
                                     headers={**headers, "Prefer": "wait=10"})
        assert response.status == 201, await response.text()

    async def ask(headers: dict[str, str], reservation: Reservation) -> str:
        response = await client.post(
            f"/api/v1/reservations/{reservation.id}/move",
            json={"timeslot_id": other[reservation.timeslot_id]},  # type: ignore[attr-defined]
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        # 404: the other copy came first, and the booking it moves has gone.
        assert response.status in (202, 404, 409), await response.text()
        return str((await response.json()).get("command_id", ""))

    for wave in range(WAVES):
        asks = [ask(headers, reservation) for user_id, headers in people
                for reservation in await Reservation.filter(user_id=user_id, active=True)
                for _ in range(COPIES)]
        random.Random(wave).shuffle(asks)
        await decided([command_id for command_id in await asyncio.gather(*asks)
                       if command_id])
    user_ids = [user_id for user_id, _ in people]
    return MoveStorm(
        {user_id: await Reservation.filter(user_id=user_id, active=True).count()
         for user_id in user_ids},
        await ledgers_agree(user_ids),
        await seats_agree([session.timeslot_id for session in sessions]),
    )


async def test_moves_both_ways_at_once_lose_no_seat_and_give_none_twice(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker,
) -> None:
    storm = await moves_storm(client, sign_up, settings)
    assert storm.wrong_seat_counts() == []
    assert (storm.unbalanced, storm.miscounted) == ([], [])


@pytest.mark.control
async def test_control_a_move_decided_as_give_back_then_book_loses_seats(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard is one decision: the new seat confirmed before the old one is
    freed, nothing changed on a refusal. Off: the old seat given back (with
    its refund) first, then the new one booked like any other request."""
    async def give_back_then_book(timeslot: Timeslot, items: list[Any], *, now: Any,
                                  locked: dict[int, Timeslot]) -> Decisions:
        decided = Decisions()
        for item in items:
            old = await Reservation.get_or_none(id=item.payload["reservation_id"],
                                                active=True)
            if old is not None and await free_seat(old, now=now):
                await change_seat_count(locked[old.timeslot_id], -1)  # type: ignore[attr-defined]
                await post_entry(user_id=item.payload["user_id"], amount=old.price_coupons,
                                 kind=LedgerKind.BOOKING_REFUND, now=now,
                                 reference=f"cancellation:{old.id}",
                                 paid_for=seat_paid_for(old.command_id))
            decided.add(await seats(timeslot, [item], now=now))
        return decided

    monkeypatch.setattr(batches, "moves", give_back_then_book)
    storm = await moves_storm(client, sign_up, settings)
    assert storm.wrong_seat_counts() != []
