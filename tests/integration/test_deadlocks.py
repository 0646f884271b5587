"""A deadlock is known for one wherever the database breaks it, so a batch
that loses one is decided again rather than failed, and a keyed queue does
not count it against an item: the wallet posts its entries inside a
savepoint, and a deadlock met there surfaces as the failed rollback to that
savepoint. MariaDB only: SQLite locks the whole file.
"""

from __future__ import annotations

import asyncio

import pymysql
import pytest
from tortoise.context import TortoiseContext
from tortoise.transactions import in_transaction

from fitnus.db import is_deadlock, is_passing
from fitnus.wallet.models import Wallet
from tests.integration.test_lot_locks import neighbours

# MySQL's ER_SP_DOES_NOT_EXIST: a rollback to a savepoint the server has dropped.
SAVEPOINT_GONE = 1305


async def a_deadlock_inside_a_savepoint() -> BaseException:
    """Two transactions lock two wallets in opposite orders, each taking its
    second inside a savepoint; the error of the one the database rolled back."""
    first, second = await neighbours()
    holding = (asyncio.Event(), asyncio.Event())

    async def lock(mine: int, theirs: int, me: int) -> None:
        async with in_transaction():
            await Wallet.select_for_update().filter(user_id=mine)
            holding[me].set()
            await holding[1 - me].wait()
            async with in_transaction():
                await Wallet.select_for_update().filter(user_id=theirs)

    outcomes = await asyncio.gather(lock(first, second, 0), lock(second, first, 1),
                                    return_exceptions=True)
    [victim] = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    return victim


async def test_a_deadlock_met_inside_a_savepoint_is_known_for_one(
    database: TortoiseContext,
) -> None:
    error = await a_deadlock_inside_a_savepoint()
    assert isinstance(error, pymysql.err.OperationalError)
    assert error.args[0] == SAVEPOINT_GONE
    assert is_deadlock(error)
    # Passing: a keyed queue tries it again rather than blaming its item.
    assert is_passing(error)


def test_an_error_of_the_work_itself_is_not_passing() -> None:
    def decide() -> None:
        try:
            {}["reservation_id"]
        except KeyError as error:
            raise RuntimeError("the batch failed") from error

    with pytest.raises(RuntimeError) as failure:
        decide()
    assert not is_passing(failure.value)
    assert not is_deadlock(failure.value)
