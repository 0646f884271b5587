"""The flash crowd against the Procfile's processes (web, two workers, the
scheduler): once as is, once with a worker killed by SIGKILL in the middle,
after which the survivor decides every remaining command within 10 s (the
sweeper re-drives the dead drainer's queue), and every invariant holds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
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
from tests.e2e.test_centers import center_body, in_days, program_body
from tests.e2e.test_processes import (
    ROOT,
    environment,
    free_port,
    procfile_commands,
    wait_until_healthy,
)

SEATS, PEOPLE, REQUESTS = 50, 500, 2000
RECOVERY_SECONDS = 10.0


@pytest.fixture
def stack(settings: Settings, database: TortoiseContext) -> Iterator[dict[str, Any]]:
    commands = procfile_commands()
    port = free_port()
    env = environment(settings, HTTP_PORT=str(port),
                      REDIS_KEY_PREFIX=f"{settings.redis_key_prefix}fault-{uuid.uuid4().hex[:6]}:")
    processes = {
        "web": subprocess.Popen(commands["web"], env=env, cwd=ROOT),
        "worker.1": subprocess.Popen(commands["worker"], env=env, cwd=ROOT),
        "worker.2": subprocess.Popen(
            commands["worker"], env={**env, "WORKER_METRICS_PORT": str(free_port())}, cwd=ROOT
        ),
        "scheduler": subprocess.Popen(commands["scheduler"], env=env, cwd=ROOT),
    }
    try:
        yield {"url": f"http://127.0.0.1:{port}", "processes": processes}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            process.wait(timeout=30)


async def open_timeslot(session: aiohttp.ClientSession, url: str, owner_token: str) -> int:
    headers = {"Authorization": f"Bearer {owner_token}"}
    center = await (await session.post(f"{url}/api/v1/centers", json=center_body(),
                                       headers=headers)).json()
    program = await (await session.post(f"{url}/api/v1/centers/{center['id']}/programs",
                                        json=program_body(price_coupons=PRICE),
                                        headers=headers)).json()
    timeslot = await (await session.post(f"{url}/api/v1/programs/{program['id']}/timeslots",
                                         json={"starts_at": in_days(8), "capacity": SEATS},
                                         headers=headers)).json()
    return int(timeslot["id"])


@pytest.mark.parametrize("kill_a_worker", [False, True], ids=["two-workers", "one-killed"])
async def test_two_worker_processes_seat_fifty_first_come_first_served(
    stack: dict[str, Any], settings: Settings, kill_a_worker: bool
) -> None:
    url = stack["url"]
    people = await users_with_tokens(settings, PEOPLE, coupons=PRICE * 2)
    [owner] = await users_with_tokens(settings, 1, coupons=0)
    from fitnus.accounts.models import Role, User

    await User.filter(id=owner[0]).update(role=Role.OWNER)
    from fitnus.accounts.tokens import AccessTokens
    from fitnus.clock import system_clock

    owner_token = AccessTokens(
        secret=settings.jwt_secret, algorithm=settings.jwt_algorithm, issuer=settings.jwt_issuer,
        audience=settings.jwt_audience, ttl_seconds=900,
    ).issue(user_id=owner[0], role=Role.OWNER, now=system_clock.now())

    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_until_healthy(session, url)
        timeslot_id = await open_timeslot(session, url, owner_token)
        accepted: list[tuple[int, dict[str, Any]]] = []

        async def ask(person: Any) -> None:
            async with session.post(f"{url}/api/v1/reservations",
                                    json={"timeslot_id": timeslot_id},
                                    headers=person[1]) as response:
                body = await response.json()
                if response.status == 202:
                    accepted.append((person[0], body))

        async def storm() -> None:
            tasks = []
            for n in range(REQUESTS):
                tasks.append(asyncio.create_task(ask(people[n % PEOPLE])))
                if n % 100 == 99:
                    await asyncio.sleep(0.05)  # spread the crowd over about a second
            await asyncio.gather(*tasks)

        crowd = asyncio.create_task(storm())

        async def some_decided() -> bool:
            ids = [body["command_id"] for _, body in accepted]
            return bool(ids) and await Command.filter(id__in=ids).exists()

        await eventually(some_decided, deadline_seconds=30)
        victim = stack["processes"]["worker.1"]
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
