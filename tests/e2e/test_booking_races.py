"""Storms that look for races in the booking engine, each beside its control:
the same storm with the guard switched off must break the invariant, which
shows the storm can find the race at all."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from tortoise.functions import Sum

from fitnus.booking import batches
from fitnus.booking.models import Reservation
from fitnus.booking.outcomes import RESERVE_SEAT
from fitnus.booking.service import timeslot_queue
from fitnus.centers.models import Timeslot
from fitnus.commands.idempotency import IdempotencyKeys
from fitnus.commands.models import Command, CommandStatus
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.wallet.models import CouponDraw, CouponLot, LedgerEntry, LedgerKind, Wallet
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, fund, open_session, users_with_tokens
from tests.e2e.test_processes import wait_until_healthy
from tests.stacks import open_timeslot, owner_headers, running_stack

Client = TestClient[Any, Any]
STORM_DEADLINE_SECONDS = 60.0


async def decided(command_ids: list[str]) -> None:
    async def all_decided() -> bool:
        return await Command.filter(id__in=command_ids).count() == len(command_ids)

    await eventually(all_decided, deadline_seconds=STORM_DEADLINE_SECONDS)


async def reservations_of(answers: list[dict[str, Any]]) -> list[int]:
    """The reservation each answer to a booking or a cancellation is about,
    every one of them having succeeded: at once when it was decided within
    its wait, else from its command once decided (a slow machine answers
    part of a crowd 202)."""
    late = [answer["command_id"] for answer in answers if "command_id" in answer]
    await decided(late)
    commands = {str(command.id): command for command in await Command.filter(id__in=late)}
    failed = [command.error for command in commands.values()
              if command.status is not CommandStatus.SUCCEEDED]
    assert not failed, failed
    return [answer["id"] if "command_id" not in answer
            else commands[answer["command_id"]].result["reservation_id"]  # type: ignore[index]
            for answer in answers]


async def book(client: Client, headers: dict[str, str], timeslot_id: int,
               wait: bool = False) -> dict[str, Any]:
    extra = {"Prefer": "wait=10"} if wait else {}
    response = await client.post("/api/v1/reservations", json={"timeslot_id": timeslot_id},
                                 headers={**headers, **extra})
    assert response.status in (201, 202), await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def cancel(client: Client, headers: dict[str, str],
                 reservation_id: int) -> dict[str, Any]:
    """200 once decided, or 202 with its command id when not decided within the wait."""
    response = await client.delete(f"/api/v1/reservations/{reservation_id}", headers=headers)
    assert response.status in (200, 202), await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def ledgers_agree(user_ids: list[int]) -> list[int]:
    """The people whose wallet disagrees with their ledger or their lots: the
    balance is the ledger's sum, what is neither held nor spent is in their
    lots, and each lot's coupons are what is left in it, what expired and
    what its draws still hold."""
    wrong = []
    for wallet in await Wallet.filter(user_id__in=user_ids):
        user_id: int = wallet.user_id  # type: ignore[attr-defined]
        total = await LedgerEntry.filter(user_id=user_id).annotate(
            total=Sum("amount")).first().values("total")
        lots = await CouponLot.filter(user_id=user_id)
        drawn = {lot.id: 0 for lot in lots}
        for draw in await CouponDraw.filter(lot_id__in=list(drawn)):
            drawn[draw.lot_id] += draw.coupons - draw.returned  # type: ignore[attr-defined]
        if (wallet.balance != (total or {}).get("total")
                or wallet.balance - wallet.held != sum(lot.remaining for lot in lots)
                or any(lot.remaining + lot.expired + drawn[lot.id] != lot.coupons
                       for lot in lots)):
            wrong.append(user_id)
    return wrong


async def seats_agree(timeslot_ids: list[int]) -> list[int]:
    """The timeslots whose seat count is not their live reservations, or over capacity."""
    wrong = []
    for timeslot in await Timeslot.filter(id__in=timeslot_ids):
        live = await Reservation.filter(timeslot_id=timeslot.id, active=True).count()
        if timeslot.reserved != live or live > timeslot.capacity:
            wrong.append(timeslot.id)
    return wrong


# --- 1. Overlapping sessions booked at the same instant -----------------------------

OVERLAPPING, PEOPLE_BOOKING_ALL = 6, 60
# MySQL's own default: each transaction reads the snapshot of its first plain read.
REPEATABLE_READ = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"


@dataclass
class OverlapStorm:
    seats_per_person: dict[int, int]
    debits_per_person: dict[int, int]
    unbalanced: list[int]
    miscounted: list[int]

    def doubled(self) -> list[int]:
        return sorted(user for user, seats in self.seats_per_person.items() if seats != 1)

    def charged_twice(self) -> list[int]:
        return sorted(user for user, debits in self.debits_per_person.items() if debits != 1)


async def overlapping_bookings_storm(settings: Settings, *, worker_env: dict[str, str]
                                     ) -> OverlapStorm:
    """60 people each ask, all at once, for six sessions that overlap in time,
    decided by two worker processes: each person must end up with one."""
    with running_stack(settings, workers=2, worker_env=worker_env) as stack:
        people = await users_with_tokens(settings, PEOPLE_BOOKING_ALL, coupons=PRICE * 10)
        owner = await owner_headers(settings)
        start = (datetime.now(UTC) + timedelta(days=9)).replace(minute=0, second=0,
                                                                microsecond=0)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
            await wait_until_healthy(session, stack.url)
            # An hour each, ten minutes apart: every pair overlaps.
            timeslots = [
                await open_timeslot(session, stack.url, owner, capacity=PEOPLE_BOOKING_ALL,
                                    price=PRICE,
                                    starts_at=(start + timedelta(minutes=10 * n)).isoformat())
                for n in range(OVERLAPPING)
            ]

            async def ask(headers: dict[str, str], timeslot_id: int) -> str:
                async with session.post(f"{stack.url}/api/v1/reservations",
                                        json={"timeslot_id": timeslot_id},
                                        headers=headers) as response:
                    assert response.status == 202, await response.text()
                    return str((await response.json())["command_id"])

            asks = [ask(headers, timeslot_id) for _, headers in people
                    for timeslot_id in timeslots]
            random.Random(1).shuffle(asks)
            await decided(list(await asyncio.gather(*asks)))
    user_ids = [user_id for user_id, _ in people]
    seats = {user_id: await Reservation.filter(user_id=user_id, active=True).count()
             for user_id in user_ids}
    debits = {user_id: await LedgerEntry.filter(user_id=user_id,
                                                kind=LedgerKind.BOOKING_DEBIT).count()
              for user_id in user_ids}
    return OverlapStorm(seats, debits, await ledgers_agree(user_ids),
                        await seats_agree(timeslots))


async def test_overlapping_sessions_booked_at_once_seat_each_person_once(
    settings: Settings, database: Any,
) -> None:
    storm = await overlapping_bookings_storm(settings, worker_env={})
    assert (storm.doubled(), storm.charged_twice()) == ([], [])
    assert (storm.unbalanced, storm.miscounted) == ([], [])


@pytest.mark.control
async def test_control_overlaps_checked_on_a_repeatable_read_snapshot_seat_people_twice(
    settings: Settings, database: Any,
) -> None:
    storm = await overlapping_bookings_storm(settings, worker_env={
        "DATABASE_URL": f"{settings.database_url}?init_command={REPEATABLE_READ}"})
    assert storm.doubled() != []
    assert storm.charged_twice() != []


# --- 2. One Idempotency-Key sent many times at once ---------------------------------

COPIES = 20


@dataclass
class KeyStorm:
    command_ids: set[str]
    decided: int
    rejected: int


async def one_key_storm(client: Client, sign_up: Any, redis: Redis, settings: Settings
                        ) -> KeyStorm:
    """A client retries one booking 20 times at once with one Idempotency-Key."""
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    await fund(user.id, PRICE)
    key = uuid.uuid4().hex
    answers = await asyncio.gather(*(
        book(client, {**user.headers, "Idempotency-Key": key}, session.timeslot_id)
        for _ in range(COPIES)
    ))
    await decided(list({answer["command_id"] for answer in answers}))
    queue = timeslot_queue(redis, Keys(settings.redis_key_prefix))

    async def drained() -> bool:
        return (await queue.length(session.timeslot_id) == 0
                and not await queue.leased(session.timeslot_id))

    await eventually(drained)
    return KeyStorm(
        command_ids={answer["command_id"] for answer in answers},
        decided=await Command.filter(user_id=user.id, kind=RESERVE_SEAT).count(),
        rejected=await Notification.filter(user_id=user.id,
                                           type="reservation.rejected").count(),
    )


async def test_copies_of_one_idempotency_key_sent_at_once_are_one_command(
    client: Client, sign_up: Any, redis: Redis, settings: Settings, worker: dramatiq.Worker,
) -> None:
    storm = await one_key_storm(client, sign_up, redis, settings)
    assert len(storm.command_ids) == 1
    assert (storm.decided, storm.rejected) == (1, 0)


@pytest.mark.control
async def test_control_get_then_set_queues_every_copy(
    client: Client, sign_up: Any, redis: Redis, settings: Settings, worker: dramatiq.Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def get_then_set(self: IdempotencyKeys, *, user_id: int, key: str,
                           answer: Any) -> dict[str, Any]:
        redis_key = Keys(settings.redis_key_prefix).idempotency(user_id, key)
        stored = await redis.get(redis_key)
        if stored is not None:
            first: dict[str, Any] = json.loads(stored)
            return first
        result: dict[str, Any] = await answer()
        # The window between the read and the write, held open so every copy
        # falls in it however fast this machine answers.
        await asyncio.sleep(0.2)
        await redis.set(redis_key, json.dumps(result), nx=True)
        return result

    monkeypatch.setattr(IdempotencyKeys, "first_answer", get_then_set)
    storm = await one_key_storm(client, sign_up, redis, settings)
    assert storm.decided > 1
    assert storm.rejected > 0


# --- 4. One lock order: bookings and cancellations of the same people ---------------


@dataclass
class DeadlockStorm:
    deadlocks: int
    unbalanced: list[int]
    miscounted: list[int]
    misplaced: list[int]


async def book_and_cancel_storm(
    client: Client, sign_up: Any, settings: Settings, caplog: pytest.LogCaptureFixture,
) -> DeadlockStorm:
    """40 people hold seats in four sessions; all at once, in random order,
    they cancel those and book four others. Batches of cancellations and of
    seats then lock the same wallets."""
    sessions = [await open_session(client, sign_up, capacity=100, days=3 + n)
                for n in range(8)]
    held, wanted = sessions[:4], sessions[4:]
    people = await users_with_tokens(settings, 40, coupons=PRICE * 20)
    reservations = await reservations_of(await asyncio.gather(*(
        book(client, headers, session.timeslot_id, wait=True)
        for _, headers in people for session in held
    )))
    caplog.set_level(logging.WARNING, logger=batches.__name__)
    caplog.clear()

    requests = [cancel(client, people[n // 4][1], reservation_id)
                for n, reservation_id in enumerate(reservations)]
    requests += [book(client, headers, session.timeslot_id)
                 for _, headers in people for session in wanted]
    random.Random(4).shuffle(requests)
    answers = await asyncio.gather(*requests)
    await decided([answer["command_id"] for answer in answers if "command_id" in answer])
    user_ids = [user_id for user_id, _ in people]
    wanted_ids = {session.timeslot_id for session in wanted}
    misplaced = [
        user_id for user_id in user_ids
        if {r.timeslot_id for r in await Reservation.filter(  # type: ignore[attr-defined]
            user_id=user_id, active=True)} != wanted_ids
    ]
    return DeadlockStorm(
        deadlocks=sum("deadlock" in record.getMessage() for record in caplog.records),
        unbalanced=await ledgers_agree(user_ids),
        miscounted=await seats_agree([session.timeslot_id for session in sessions]),
        misplaced=misplaced,
    )


async def test_bookings_and_cancellations_of_the_same_people_never_deadlock(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    storm = await book_and_cancel_storm(client, sign_up, settings, caplog)
    assert storm == DeadlockStorm(deadlocks=0, unbalanced=[], miscounted=[], misplaced=[])


@pytest.mark.control
async def test_control_wallets_locked_in_queue_order_deadlock(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def lock_nothing_up_front(timeslot: Any, items: Any, waiting: Any, *,
                                    now: Any) -> None:
        return None

    monkeypatch.setattr(batches, "_lock_wallets_of", lock_nothing_up_front)
    storm = await book_and_cancel_storm(client, sign_up, settings, caplog)
    assert storm.deadlocks > 0
