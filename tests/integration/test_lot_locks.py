"""Spending one person's coupons never waits for another person's spending.

Batches of different timeslots seat different people and run side by side
only if their locks do not meet. Each locks its people's wallets, then their
coupon lots; a locking read of a person's lots through the (user, expiry)
index also locked the next person's first lot, so a batch waited for any
batch spending a neighbour's coupons (bench/scale_workers.py found it: the
workers' rate stayed flat as processes were added). MariaDB only: SQLite
locks the whole file.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable

import pytest
from tortoise.context import TortoiseContext
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role, User
from fitnus.clock import system_clock
from fitnus.wallet import lots
from fitnus.wallet.lots import LOT_USER_INDEX, Spend
from fitnus.wallet.models import CouponLot, Wallet
from fitnus.wallet.service import lock_wallets
from tests.e2e.test_booking import fund

# How long the first transaction holds its people's locks.
HELD_SECONDS = 1.5


async def neighbours() -> tuple[int, int]:
    """Two people whose lots lie next to each other in the (user, expiry) index."""
    tag = uuid.uuid4().hex[:8]
    first = await User.create(email=f"lots-{tag}-a@fitnus.example.com", name="a",
                              role=Role.USER, password_hash="-")
    second = await User.create(email=f"lots-{tag}-b@fitnus.example.com", name="b",
                               role=Role.USER, password_hash="-")
    for person in (first, second):
        await Wallet.create(user_id=person.id, balance=0, held=0, updated_at=system_clock.now())
        await fund(person.id, 10)
    return first.id, second.id


async def spend(user_id: int, *, hold: asyncio.Event | None = None) -> float:
    """One batch's coupon spending for one person; how long it took."""
    started = time.monotonic()
    async with in_transaction():
        now = system_clock.now()
        await lock_wallets([user_id], now=now)
        await lots.draw([Spend(user_id=user_id, coupons=1, paid_for=f"test:{uuid.uuid4()}")],
                        now=now)
        if hold is not None:
            hold.set()
            await asyncio.sleep(HELD_SECONDS)
    return time.monotonic() - started


async def while_the_neighbour_spends() -> float:
    """How long spending the first person's coupons takes while a transaction
    spending the second's holds its locks."""
    first, second = await neighbours()
    holding = asyncio.Event()
    neighbour = asyncio.create_task(spend(second, hold=holding))
    await holding.wait()
    took = await spend(first)
    await neighbour
    return took


async def test_spending_does_not_wait_for_a_neighbours_spending(
    database: TortoiseContext,
) -> None:
    assert await while_the_neighbour_spends() < HELD_SECONDS / 3


@pytest.mark.control
async def test_control_a_locking_read_by_person_waits_for_the_neighbour(
    database: TortoiseContext, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def by_person(user_ids: Iterable[int], **conditions: object) -> list[CouponLot]:
        return await CouponLot.select_for_update().filter(
            user_id__in=list(user_ids), **conditions).force_index(LOT_USER_INDEX).order_by(
            "user_id", "expires_at", "id")

    monkeypatch.setattr(lots, "_lock_lots", by_person)
    assert await while_the_neighbour_spends() > HELD_SECONDS * 0.8
