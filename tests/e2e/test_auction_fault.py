"""The auction storm on the Procfile's processes (web, two workers, scheduler):
5,000 bids from 500 people with random budgets in one burst, once as is and
once with a worker killed by SIGKILL mid-burst. One winner; the final price
is a sequential replay of the rule over the accepted bids in queue order; at
every instant sampled during the burst the coupons held are the leader's
bid; after the close, no hold remains and the winner paid once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from tortoise import connections
from tortoise.context import TortoiseContext
from tortoise.transactions import in_transaction

from fitnus.auctions import rules
from fitnus.auctions.models import Auction
from fitnus.clock import system_clock
from fitnus.commands.models import Command
from fitnus.config import Settings
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet
from fitnus.wallet.service import post_entry
from tests.conftest import eventually
from tests.e2e.test_booking import users_with_tokens
from tests.e2e.test_booking_races import ledgers_agree
from tests.e2e.test_processes import wait_until_healthy
from tests.stacks import Stack, owner_headers, running_stack

pytestmark = pytest.mark.cluster

PEOPLE, BIDS = 500, 5_000
# Open long enough for the slowest burst; once every bid is decided, its end
# is brought forward to now rather than waited for.
AUCTION_SECONDS = 600
RECOVERY_SECONDS = 15.0


@pytest.fixture
def stack(settings: Settings, database: TortoiseContext) -> Iterator[Stack]:
    with running_stack(settings, workers=2) as running:
        yield running


async def held_and_price(user_ids: list[int], auction_id: int) -> tuple[int, int]:
    """Both from one statement, so from one moment of the database."""
    people = ",".join(str(int(user_id)) for user_id in user_ids)
    rows = await connections.get("default").execute_query_dict(
        f"SELECT (SELECT COALESCE(SUM(held), 0) FROM wallet WHERE user_id IN ({people})) AS held,"  # noqa: S608
        f" (SELECT COALESCE(price, 0) FROM auction WHERE id = {int(auction_id)}) AS price")
    return int(rows[0]["held"]), int(rows[0]["price"])


@pytest.mark.parametrize("kill_a_worker", [False, True], ids=["two-workers", "one-killed"])
async def test_a_burst_of_bids_on_two_workers_ends_as_the_rule_in_queue_order(
    stack: Stack, settings: Settings, kill_a_worker: bool,
) -> None:
    chance = random.Random(13)
    people = await users_with_tokens(settings, PEOPLE, coupons=10)
    now = system_clock.now()
    budgets: dict[int, int] = {}
    for user_id, _ in people:
        extra = chance.randint(0, 490)
        if extra:
            async with in_transaction():
                await post_entry(user_id=user_id, kind=LedgerKind.GRANT, amount=extra,
                                 reference=f"auction-storm:{user_id}", now=now,
                                 expires_at=now + timedelta(days=365))
        budgets[user_id] = 10 + extra
    user_ids = list(budgets)
    owner = await owner_headers(settings)
    requests = [(chance.choice(people), chance.choice(("amount", "max_amount")),
                 chance.randint(10, 520)) for _ in range(BIDS)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        await wait_until_healthy(session, stack.url)
        ends_at = datetime.now(UTC) + timedelta(seconds=AUCTION_SECONDS)
        async with session.post(f"{stack.url}/api/v1/auctions", headers=owner, json={
                "title": "PT 한 달권", "starts_at": datetime.now(UTC).isoformat(),
                "ends_at": ends_at.isoformat(), "starting_price": 10,
                "soft_close_seconds": 0}) as created:
            assert created.status == 201, await created.text()
            auction_id = (await created.json())["id"]
        accepted: list[tuple[int, str, int, dict[str, Any]]] = []
        refused_at_the_door = 0

        async def ask(person: Any, field: str, amount: int) -> None:
            nonlocal refused_at_the_door
            async with session.post(f"{stack.url}/api/v1/auctions/{auction_id}/bids",
                                    json={field: amount}, headers=person[1]) as response:
                body = await response.json()
                if response.status == 409:
                    # Under a price already reached: never queued, so never counted.
                    assert body["code"] == "bid_too_low"
                    refused_at_the_door += 1
                    return
                assert response.status == 202, body
                accepted.append((person[0], field, amount, body))

        async def burst() -> None:
            tasks = []
            for n, request in enumerate(requests):
                tasks.append(asyncio.create_task(ask(*request)))
                if n % 250 == 249:
                    await asyncio.sleep(0.05)
            await asyncio.gather(*tasks)

        crowd = asyncio.create_task(burst())
        samples = []

        async def some_decided() -> bool:
            ids = [answer["command_id"] for *_, answer in accepted]
            return bool(ids) and await Command.filter(id__in=ids).exists()

        await eventually(some_decided, deadline_seconds=30)
        victim = stack.processes["worker.1"]
        if kill_a_worker:
            assert not crowd.done()
            os.kill(victim.pid, signal.SIGKILL)
        while not crowd.done():
            samples.append(await held_and_price(user_ids, auction_id))
            await asyncio.sleep(0.02)
        await crowd
        command_ids = [answer["command_id"] for *_, answer in accepted]
        deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
        while await Command.filter(id__in=command_ids).count() < len(command_ids):
            samples.append(await held_and_price(user_ids, auction_id))
            assert asyncio.get_running_loop().time() < deadline, "not decided in time"
            await asyncio.sleep(0.05)
        if kill_a_worker:
            assert victim.wait(timeout=5) == -signal.SIGKILL

    assert len(samples) > 10
    assert [(held, price) for held, price in samples if held != price] == []
    replayed = rules.Standing(ends_at=ends_at)
    terms = rules.Terms(starts_at=ends_at - timedelta(days=1), starting_price=10,
                        soft_close=timedelta(0), max_extensions=None)
    for user_id, field, amount, _ in sorted(accepted, key=lambda bid: bid[3]["position"]):
        replayed = rules.decide_bid(replayed, terms, rules.BidRequest(
            user_id=user_id, accepted_at=ends_at - timedelta(seconds=1), **{field: amount}),
            budgets.__getitem__).standing
    auction = await Auction.get(id=auction_id)
    assert (auction.price, auction.leader_id) == (  # type: ignore[attr-defined]
        replayed.price, replayed.leader)
    assert await Command.filter(id__in=command_ids).count() == len(set(command_ids))
    assert len(command_ids) + refused_at_the_door == BIDS

    async def closed() -> bool:
        return (await Auction.get(id=auction_id)).closed_at is not None

    await Auction.filter(id=auction_id).update(ends_at=datetime.now(UTC))
    await eventually(closed, deadline_seconds=RECOVERY_SECONDS)
    assert not await Wallet.filter(user_id__in=user_ids, held__gt=0).exists()
    assert not await Wallet.filter(user_id__in=user_ids, balance__lt=0).exists()
    (capture,) = await LedgerEntry.filter(user_id__in=user_ids, kind=LedgerKind.AUCTION_CAPTURE)
    assert (capture.user_id, -capture.amount) == (  # type: ignore[attr-defined]
        replayed.leader, replayed.price)
    assert await ledgers_agree(user_ids) == []
