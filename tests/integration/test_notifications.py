"""Notifications and welcome commands stay single under concurrent duplicates."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role, User
from fitnus.clock import system_clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.notifications import service as notification_service
from fitnus.notifications.models import Notification
from fitnus.notifications.service import notifications_after, notify, send_welcome


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


async def every_row_read_once(*, fast_writer_wait_seconds: float = 1.0) -> bool:
    """Two writers to one person, the first holding its transaction open while
    the second tries to commit; a stream-like reader reads after its cursor in
    between and after both. Does it read each row exactly once?"""
    person = await User.create(email=f"order-{uuid.uuid4().hex[:10]}@fitnus.example.com",
                               name="순서", role=Role.USER, password_hash="-")
    inside, release = asyncio.Event(), asyncio.Event()

    async def slow() -> int:
        async with in_transaction():
            row = await notify(user_id=person.id, type="test.order", payload={},
                               dedupe_key="slow", clock=system_clock)
            inside.set()
            await release.wait()
        return row.id

    slow_writer = asyncio.create_task(slow())
    await inside.wait()
    fast_writer = asyncio.create_task(notify(user_id=person.id, type="test.order", payload={},
                                             dedupe_key="fast", clock=system_clock))
    # Unordered, the second writer commits at once; ordered, it waits its turn.
    await asyncio.wait({fast_writer}, timeout=fast_writer_wait_seconds)
    seen = [row.id for row in await notifications_after(person.id, after_id=0, limit=10)]
    release.set()
    written = {await slow_writer, (await fast_writer).id}
    seen += [row.id for row in await notifications_after(
        person.id, after_id=seen[-1] if seen else 0, limit=10)]
    return sorted(seen) == sorted(written)


async def test_a_persons_notifications_commit_in_id_order() -> None:
    assert await every_row_read_once()


@pytest.mark.control
async def test_control_unordered_writers_leave_a_row_behind_the_cursor(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_turn(user_ids: Any) -> None:
        return None

    monkeypatch.setattr(notification_service, "take_turn", no_turn)
    assert not await every_row_read_once()
