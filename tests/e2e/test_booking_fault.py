"""The flash crowd against the Procfile's processes (two web, two workers,
the scheduler): once as is, once with a worker killed by SIGKILL in the middle,
after which the survivor decides every remaining command within 10 s (the
sweeper re-drives the dead drainer's queue), and every invariant holds."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from tortoise.context import TortoiseContext
from tortoise.functions import Sum

from fitnus.booking.models import Reservation
from fitnus.centers.models import Timeslot
from fitnus.commands.models import Command
from fitnus.config import Settings
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, users_with_tokens
from tests.stacks import Stack, open_timeslot, owner_headers, running_stack, until_deciding

pytestmark = pytest.mark.cluster

SEATS, PEOPLE, REQUESTS = 50, 500, 2000
RECOVERY_SECONDS = 10.0


@pytest.fixture
def stack(settings: Settings, database: TortoiseContext) -> Iterator[Stack]:
    with running_stack(settings, webs=2, workers=2) as running:
        yield running


@pytest.mark.parametrize("kill_a_worker", [False, True], ids=["two-workers", "one-killed"])
async def test_two_web_and_two_worker_processes_seat_fifty_first_come_first_served(
    stack: Stack, settings: Settings, kill_a_worker: bool
) -> None:
    people = await users_with_tokens(settings, PEOPLE, coupons=PRICE * 2)
    owner = await owner_headers(settings)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        await until_deciding(session, stack, settings, owner)
        timeslot_id = await open_timeslot(session, stack.url, owner, capacity=SEATS, price=PRICE)
        accepted: list[tuple[int, dict[str, Any]]] = []

        async def ask(person: Any, url: str) -> None:
            async with session.post(f"{url}/api/v1/reservations",
                                    json={"timeslot_id": timeslot_id},
                                    headers=person[1]) as response:
                body = await response.json()
                if response.status == 202:
                    accepted.append((person[0], body))

        async def storm() -> None:
            tasks = []
            for n in range(REQUESTS):
                tasks.append(asyncio.create_task(
                    ask(people[n % PEOPLE], stack.urls[n % len(stack.urls)])))
                if n % 100 == 99:
                    await asyncio.sleep(0.05)  # spread the crowd over about a second
            await asyncio.gather(*tasks)

        crowd = asyncio.create_task(storm())

        async def some_decided() -> bool:
            ids = [body["command_id"] for _, body in accepted]
            return bool(ids) and await Command.filter(id__in=ids).exists()

        await eventually(some_decided, deadline_seconds=30)
        victim = stack.processes["worker.1"]
        if kill_a_worker:
            assert not crowd.done()  # mid-run: requests are still arriving
            os.kill(victim.pid, signal.SIGKILL)
        killed_at = asyncio.get_running_loop().time()
        await crowd

        command_ids = [body["command_id"] for _, body in accepted]
        deadline = killed_at + RECOVERY_SECONDS
        while await Command.filter(id__in=command_ids).count() < len(command_ids):
            assert asyncio.get_running_loop().time() < deadline, "not decided in time"
            await asyncio.sleep(0.05)
        if kill_a_worker:
            assert victim.wait(timeout=5) == -signal.SIGKILL

    confirmed = await Reservation.filter(timeslot_id=timeslot_id, active=True)
    assert len(confirmed) == SEATS
    assert len({r.user_id for r in confirmed}) == SEATS  # type: ignore[attr-defined]
    assert (await Timeslot.get(id=timeslot_id)).reserved == SEATS
    assert await Command.filter(id__in=command_ids).count() == len(set(command_ids))
    by_position = sorted(accepted, key=lambda pair: pair[1]["position"])
    expected: list[str] = []
    seated: set[int] = set()
    for user_id, body in by_position:
        if len(expected) < SEATS and user_id not in seated:
            expected.append(body["command_id"])
            seated.add(user_id)
    assert {str(r.command_id) for r in confirmed} == set(expected)
    user_ids = [person[0] for person in people]
    sums = {
        row["user_id"]: row["total"]
        for row in await LedgerEntry.filter(user_id__in=user_ids).group_by("user_id").annotate(
            total=Sum("amount")).values("user_id", "total")
    }
    for wallet in await Wallet.filter(user_id__in=user_ids):
        assert wallet.balance == sums[wallet.user_id]  # type: ignore[attr-defined]
    assert await LedgerEntry.filter(user_id__in=user_ids,
                                    kind=LedgerKind.BOOKING_DEBIT).count() == SEATS
