"""Notifications and welcome commands stay single under concurrent duplicates."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tortoise.transactions import in_transaction

from fitnus.clock import system_clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.notifications.models import Notification
from fitnus.notifications.service import notify, send_welcome


async def test_concurrent_notifications_with_one_key_store_one_row(sign_up: Any) -> None:
    account = await sign_up()
    key = f"race:{uuid.uuid4().hex}"

    async def send() -> int:
        async with in_transaction():
            notification = await notify(
                user_id=account.id, type="test.race", payload={"n": 1}, dedupe_key=key,
                clock=system_clock,
            )
            return notification.id

    ids = await asyncio.gather(*(send() for _ in range(12)))
    assert len(set(ids)) == 1
    assert await Notification.filter(user_id=account.id, dedupe_key=key).count() == 1


async def test_concurrent_deliveries_of_one_welcome_decide_it_once(sign_up: Any) -> None:
    account = await sign_up()
    command_id = uuid.UUID(account.welcome_command_id)
    outcomes = await asyncio.gather(
        *(send_welcome(command_id=command_id, clock=system_clock) for _ in range(8))
    )
    decided = await Command.get(id=command_id)
    assert decided.status is CommandStatus.SUCCEEDED
    assert {outcome.decided_at for outcome in outcomes if outcome is not None} == {
        decided.decided_at
    }
    assert await Notification.filter(user_id=account.id).count() == 1


async def test_an_unknown_command_is_not_an_error() -> None:
    assert await send_welcome(command_id=uuid.uuid4(), clock=system_clock) is None
