"""Booking through the keyed queue, decided by real workers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role, User
from fitnus.accounts.tokens import AccessTokens
from fitnus.booking import rules
from fitnus.booking.models import Reservation
from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.config import Settings
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet
from fitnus.wallet.service import open_wallet, post_entry
from tests.conftest import eventually
from tests.e2e.test_centers import in_days, new_center, new_program

pytestmark = pytest.mark.cluster

Client = TestClient[Any, Any]
PRICE = 10


@dataclass
class Session:
    timeslot_id: int
    owner: Any


async def open_session(client: Client, sign_up: Any, *, capacity: int, days: float = 3,
                       hour: int = 10, starts_at: str | None = None,
                       price: int = PRICE) -> Session:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"],
                                price_coupons=price)
    response = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                 json={"starts_at": starts_at or in_days(days, hour),
                                       "capacity": capacity},
                                 headers=owner.headers)
    assert response.status == 201, await response.text()
    return Session((await response.json())["id"], owner)


async def fund(user_id: int, amount: int) -> None:
    async with in_transaction():
        await post_entry(user_id=user_id, kind=LedgerKind.GRANT, amount=amount,
                         reference=f"test-grant:{uuid.uuid4().hex}", now=system_clock.now(),
                         expires_at=system_clock.now() + timedelta(days=365))


async def reserve(client: Client, account: Any, timeslot_id: int, **headers: str) -> Any:
    return await client.post("/api/v1/reservations", json={"timeslot_id": timeslot_id},
                             headers={**account.headers, **headers})


@pytest.mark.portable
async def test_a_seat_is_confirmed_and_paid_with_prefer_wait(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    await fund(user.id, 25)
    response = await reserve(client, user, session.timeslot_id, Prefer="wait=8")
    assert response.status == 201, await response.text()
    reservation = await response.json()
    assert (reservation["status"], reservation["price_coupons"]) == ("confirmed", PRICE)
    wallet = await (await client.get("/api/v1/me/wallet", headers=user.headers)).json()
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (15, 0, 15)
    assert [lot["coupons_left"] for lot in wallet["lots"]] == [15]
    timeslot = await (await client.get(f"/api/v1/timeslots/{session.timeslot_id}")).json()
    assert (timeslot["reserved"], timeslot["remaining"]) == (1, 4)
    again = await reserve(client, user, session.timeslot_id, Prefer="wait=8")
    assert again.status == 409
    assert (await again.json())["code"] == "already_reserved"


async def test_without_prefer_the_answer_is_202_and_the_command_tells_the_outcome(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    response = await reserve(client, user, session.timeslot_id)
    assert response.status == 202
    accepted = await response.json()
    assert accepted["status"] == "pending"
    assert accepted["position"] >= 1
    command = await (await client.get(f"/api/v1/commands/{accepted['command_id']}",
                                      headers={**user.headers, "Prefer": "wait=8"})).json()
    assert command["status"] == "failed"
    assert command["error"]["code"] == "insufficient_coupons"


async def test_a_pending_command_is_visible_to_its_sender_only(
    client: Client, sign_up: Any
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user, other = await sign_up(), await sign_up()
    accepted = await (await reserve(client, user, session.timeslot_id)).json()
    path = f"/api/v1/commands/{accepted['command_id']}"
    assert (await client.get(path, headers=other.headers)).status == 404
    mine = await client.get(path, headers=user.headers)
    assert (await mine.json())["status"] in ("pending", "failed")


async def test_a_started_session_is_closed_and_an_unknown_one_404(
    client: Client, sign_up: Any
) -> None:
    user = await sign_up()
    assert (await reserve(client, user, 2**60)).status == 404
    for body in ({"timeslot_id": "1"}, {"timeslot_id": 0}, {}):
        response = await client.post("/api/v1/reservations", json=body, headers=user.headers)
        assert response.status == 400


async def test_the_same_idempotency_key_returns_the_first_answer(
    client: Client, sign_up: Any
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    key = uuid.uuid4().hex
    answers = [await (await reserve(client, user, session.timeslot_id,
                                    **{"Idempotency-Key": key})).json() for _ in range(3)]
    assert len({answer["command_id"] for answer in answers}) == 1


async def test_only_the_user_the_owner_and_admins_read_a_reservation(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user, stranger, other_owner = await sign_up(), await sign_up(), await sign_up("owner")
    await fund(user.id, PRICE)
    reservation = await (await reserve(client, user, session.timeslot_id,
                                       Prefer="wait=8")).json()
    path = f"/api/v1/reservations/{reservation['id']}"
    assert (await client.get(path, headers=user.headers)).status == 200
    assert (await client.get(path, headers=session.owner.headers)).status == 200
    assert (await client.get(path, headers=stranger.headers)).status == 404
    assert (await client.get(path, headers=other_owner.headers)).status == 404


async def test_an_overlapping_session_is_a_schedule_conflict(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    first = await open_session(client, sign_up, capacity=5, days=6, hour=10)
    second = await open_session(client, sign_up, capacity=5, days=6, hour=10)
    user = await sign_up()
    await fund(user.id, 100)
    assert (await reserve(client, user, first.timeslot_id, Prefer="wait=8")).status == 201
    clash = await reserve(client, user, second.timeslot_id, Prefer="wait=8")
    assert clash.status == 409
    assert (await clash.json())["code"] == "schedule_conflict"


async def users_with_tokens(settings: Settings, count: int, coupons: int) -> list[Any]:
    tag = uuid.uuid4().hex[:8]
    users = [User(email=f"storm-{tag}-{n}@fitnus.example.com", name=f"s{n}", role=Role.USER,
                  password_hash="-") for n in range(count)]
    await User.bulk_create(users)
    created = await User.filter(email__startswith=f"storm-{tag}-").order_by("id")
    tokens = AccessTokens(secret=settings.jwt_secret, algorithm=settings.jwt_algorithm,
                          issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                          ttl_seconds=900)
    now = system_clock.now()
    for user in created:
        async with in_transaction():
            await open_wallet(user_id=user.id, now=now)
            if coupons:
                await post_entry(user_id=user.id, kind=LedgerKind.GRANT, amount=coupons,
                                 reference=f"storm:{user.id}", now=now,
                                 expires_at=now + timedelta(days=365))
    return [(user.id, {"Authorization": "Bearer "
                       + tokens.issue(user_id=user.id, role=Role.USER, now=now)})
            for user in created]


async def test_two_thousand_requests_for_fifty_seats_first_come_first_served(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker
) -> None:
    session = await open_session(client, sign_up, capacity=50)
    people = await users_with_tokens(settings, 500, coupons=PRICE * 2)
    storm = [people[n % len(people)] for n in range(2000)]

    async def ask(person: Any) -> tuple[int, dict[str, Any]]:
        response = await client.post("/api/v1/reservations",
                                     json={"timeslot_id": session.timeslot_id},
                                     headers=person[1])
        return person[0], await response.json()

    answers = await asyncio.gather(*(ask(person) for person in storm))
    accepted = [(user_id, body) for user_id, body in answers if "command_id" in body]
    refused_fast = [body for _, body in answers if body.get("code") == "sold_out"]
    assert len(accepted) + len(refused_fast) == 2000
    command_ids = [body["command_id"] for _, body in accepted]

    async def all_decided() -> bool:
        return await Command.filter(id__in=command_ids).count() == len(command_ids)

    await eventually(all_decided, deadline_seconds=60)
    commands = {str(c.id): c for c in await Command.filter(id__in=command_ids)}
    assert all(c.status is not CommandStatus.PENDING for c in commands.values())

    confirmed = await Reservation.filter(timeslot_id=session.timeslot_id, active=True)
    assert len(confirmed) == 50
    assert len({r.user_id for r in confirmed}) == 50  # type: ignore[attr-defined]
    timeslot = await Timeslot.get(id=session.timeslot_id)
    assert timeslot.reserved == 50

    # First come, first served: a sequential pass over the positions agrees.
    by_position = sorted(accepted, key=lambda pair: pair[1]["position"])
    expected, seated = [], set()
    for user_id, body in by_position:
        if len(expected) < 50 and user_id not in seated:
            expected.append(body["command_id"])
            seated.add(user_id)
    assert {str(r.command_id) for r in confirmed} == set(expected)

    user_ids = [person[0] for person in people]
    for wallet in await Wallet.filter(user_id__in=user_ids):
        total = await LedgerEntry.filter(user_id=wallet.user_id).annotate(  # type: ignore[attr-defined]
            total=Sum("amount")).first().values("total")
        assert total is not None
        assert wallet.balance == total["total"]
    debits = await LedgerEntry.filter(user_id__in=user_ids, kind=LedgerKind.BOOKING_DEBIT).count()
    assert debits == 50


@pytest.mark.portable
async def test_a_free_session_is_booked_and_cancelled_without_coupons(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    owner = await sign_up("owner")
    program = await new_program(client, owner, (await new_center(client, owner))["id"],
                                price_coupons=0)
    created = await client.post(f"/api/v1/programs/{program['id']}/timeslots",
                                json={"starts_at": in_days(3, 10), "capacity": 2},
                                headers=owner.headers)
    timeslot_id = (await created.json())["id"]
    user = await sign_up()  # holds no coupons at all
    response = await reserve(client, user, timeslot_id, Prefer="wait=8")
    assert response.status == 201, await response.text()
    reservation = await response.json()
    assert reservation["price_coupons"] == 0
    cancelled = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                    headers=user.headers)
    assert cancelled.status == 200, await cancelled.text()
    assert (await cancelled.json())["refunded_coupons"] == 0
    assert not await LedgerEntry.filter(user_id=user.id).exists()
    assert (await Timeslot.get(id=timeslot_id)).reserved == 0


async def test_a_full_timeslot_refuses_at_once(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session = await open_session(client, sign_up, capacity=1)
    first, late = await sign_up(), await sign_up()
    await fund(first.id, PRICE)
    assert (await reserve(client, first, session.timeslot_id, Prefer="wait=8")).status == 201

    async def flagged() -> bool:
        response = await reserve(client, late, session.timeslot_id)
        return response.status == 409 and (await response.json())["code"] == rules.SOLD_OUT

    await eventually(flagged)


async def test_a_deleted_centers_timeslot_takes_no_more_bookings(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    first, late = await sign_up(), await sign_up()
    for person in (first, late):
        await fund(person.id, PRICE)
    # The first booking makes this web process remember the timeslot.
    assert (await reserve(client, first, session.timeslot_id, Prefer="wait=8")).status == 201
    timeslot = await Timeslot.get(id=session.timeslot_id).prefetch_related("program")
    deleted = await client.delete(
        f"/api/v1/centers/{timeslot.program.center_id}",  # type: ignore[attr-defined]
        headers=session.owner.headers,
    )
    assert deleted.status == 204, await deleted.text()
    response = await reserve(client, late, session.timeslot_id, Prefer="wait=8")
    assert response.status == 409, await response.text()
    assert (await response.json())["code"] == rules.TIMESLOT_CLOSED
    assert not await Reservation.filter(user_id=late.id).exists()


async def book(client: Client, sign_up: Any, *, capacity: int = 5,
               starts_at: str | None = None) -> tuple[Session, Any, dict[str, Any]]:
    session = await open_session(client, sign_up, capacity=capacity, starts_at=starts_at)
    user = await sign_up()
    await fund(user.id, PRICE)
    response = await reserve(client, user, session.timeslot_id, Prefer="wait=8")
    assert response.status == 201, await response.text()
    return session, user, await response.json()


@pytest.mark.portable
async def test_cancelling_a_day_ahead_refunds_everything_and_frees_the_seat(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session, user, reservation = await book(client, sign_up)
    response = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                   headers=user.headers)
    assert response.status == 200, await response.text()
    assert await response.json() == {"id": reservation["id"], "status": "cancelled",
                                     "refunded_coupons": PRICE, "refund_reason": "policy_full"}
    wallet = await (await client.get("/api/v1/me/wallet", headers=user.headers)).json()
    assert wallet["balance"] == PRICE
    timeslot = await (await client.get(f"/api/v1/timeslots/{session.timeslot_id}")).json()
    assert timeslot["reserved"] == 0
    again = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                headers=user.headers)
    assert (await again.json())["refunded_coupons"] == PRICE
    assert await LedgerEntry.filter(user_id=user.id, kind=LedgerKind.BOOKING_REFUND).count() == 1


async def test_cancelling_within_a_day_frees_the_seat_and_refunds_only_the_months_first(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    """Nothing comes back within a day, but a person's first late cancellation
    of a month (test_cancellation_policy.py has the second)."""
    soon = (system_clock.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    session, user, reservation = await book(client, sign_up, starts_at=soon.isoformat())
    starts = (await Timeslot.get(id=session.timeslot_id)).starts_at
    assert starts - system_clock.now() < timedelta(hours=24)
    response = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                   headers=user.headers)
    answer = await response.json()
    assert (answer["refunded_coupons"], answer["refund_reason"]) == (
        PRICE, "first_late_cancel_free")
    assert (await Timeslot.get(id=session.timeslot_id)).reserved == 0


async def quote(client: Client, account: Any, reservation_id: int) -> Any:
    return await client.get(f"/api/v1/reservations/{reservation_id}/refund",
                            headers=account.headers)


async def test_the_refund_quote_is_what_cancelling_then_refunds(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    soon = (system_clock.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    for starts_at, reason in ((None, "policy_full"), (soon.isoformat(), "first_late_cancel_free")):
        session, user, reservation = await book(client, sign_up, starts_at=starts_at)
        quoted = await quote(client, user, reservation["id"])
        assert quoted.status == 200, await quoted.text()
        assert await quoted.json() == {"refunded_coupons": PRICE, "refund_reason": reason}
        for stranger in (await sign_up(), session.owner):
            assert (await quote(client, stranger, reservation["id"])).status == 404
        cancelled = await (await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                               headers=user.headers)).json()
        assert (cancelled["refunded_coupons"], cancelled["refund_reason"]) == (PRICE, reason)
        # Nothing is left to quote once it is cancelled.
        assert (await quote(client, user, reservation["id"])).status == 404


async def book_a_started_session(client: Client, sign_up: Any) -> tuple[Any, dict[str, Any]]:
    """A person's reservation of a session that began five minutes ago."""
    session, user, reservation = await book(client, sign_up)
    past = system_clock.now() - timedelta(minutes=5)
    await Reservation.filter(id=reservation["id"]).update(starts_at=past)
    await Timeslot.filter(id=session.timeslot_id).update(starts_at=past)
    return user, reservation


async def test_a_started_session_has_no_refund_to_quote(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, reservation = await book_a_started_session(client, sign_up)
    response = await quote(client, user, reservation["id"])
    assert response.status == 409
    assert (await response.json())["code"] == "already_started"


async def test_a_started_session_cannot_be_cancelled(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    user, reservation = await book_a_started_session(client, sign_up)
    response = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                   headers=user.headers)
    assert response.status == 409
    assert (await response.json())["code"] == "already_started"


async def test_nobody_cancels_another_users_reservation(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session, _, reservation = await book(client, sign_up)
    stranger = await sign_up()
    for caller in (stranger, session.owner):
        response = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                       headers=caller.headers)
        assert response.status == 404
    assert (await Reservation.get(id=reservation["id"])).active


async def test_another_instance_hears_the_reopening_at_once(
    aiohttp_client: Any, make_app: Any, sign_up: Any, worker: dramatiq.Worker
) -> None:
    instance_a = await aiohttp_client(make_app())
    instance_b = await aiohttp_client(make_app())
    session, user, reservation = await book(instance_a, sign_up, capacity=1)
    waiting = await sign_up()
    await fund(waiting.id, PRICE)

    async def refused_by_b() -> bool:
        return (await reserve(instance_b, waiting, session.timeslot_id)).status == 409

    await eventually(refused_by_b)  # instance B now remembers the timeslot full
    cancelled = await instance_a.delete(f"/api/v1/reservations/{reservation['id']}",
                                        headers=user.headers)
    assert cancelled.status == 200
    # B remembers a full timeslot for 5 s at most; only the worker's
    # announcement lets it take the request well before that.
    deadline = asyncio.get_running_loop().time() + 1.5
    while True:
        response = await reserve(instance_b, waiting, session.timeslot_id, Prefer="wait=8")
        if response.status == 201 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert response.status == 201, await response.text()


async def test_a_cancellation_reopens_a_full_timeslot(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    session, user, reservation = await book(client, sign_up, capacity=1)
    waiting = await sign_up()
    await fund(waiting.id, PRICE)

    async def refused_fast() -> bool:
        response = await reserve(client, waiting, session.timeslot_id)
        return response.status == 409

    await eventually(refused_fast)
    await client.delete(f"/api/v1/reservations/{reservation['id']}", headers=user.headers)
    response = await reserve(client, waiting, session.timeslot_id, Prefer="wait=8")
    assert response.status == 201


class ClockBehind:
    """The web tier's clock, a few seconds behind the worker's: a request it
    accepts is decided that much later."""

    def __init__(self, seconds: float) -> None:
        self.lag = timedelta(seconds=seconds)

    def now(self) -> datetime:
        return system_clock.now() - self.lag


async def test_a_cancellation_counts_from_when_it_was_accepted_not_decided(
    aiohttp_client: Any, make_app: Any, sign_up: Any, worker: dramatiq.Worker
) -> None:
    """Accepted 24 h + 1 s before the start and decided 5 s later: a full refund."""
    client = await aiohttp_client(make_app(clock=ClockBehind(5)))
    starts = system_clock.now() + timedelta(hours=24, seconds=-4)
    _, user, reservation = await book(client, sign_up, starts_at=starts.isoformat())
    response = await client.delete(f"/api/v1/reservations/{reservation['id']}",
                                   headers=user.headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["refunded_coupons"] == PRICE
