"""A command committed by a web process that died before sending it is sent
again by the scheduler's redrive job, and decided once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq

from fitnus.accounts.service import WELCOME_COMMAND
from fitnus.clock import system_clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.service import open_command
from fitnus.notifications.models import Notification
from tests.conftest import eventually


async def test_a_stale_pending_command_is_redriven_and_decided(
    sign_up: Any, worker: dramatiq.Worker
) -> None:
    account = await sign_up()
    long_ago = system_clock.now() - timedelta(minutes=5)
    # As if the web process died between its commit and its dispatch.
    orphan = await open_command(user_id=account.id, kind=WELCOME_COMMAND, now=long_ago)
    fresh = await open_command(user_id=account.id, kind=WELCOME_COMMAND, now=system_clock.now())

    from actors.commands import redrive_pending_commands

    redrive_pending_commands.send()

    async def orphan_decided() -> bool:
        return (await Command.get(id=orphan.id)).status is CommandStatus.SUCCEEDED

    await eventually(orphan_decided)
    # Too young to be presumed lost: left for its own message.
    assert (await Command.get(id=fresh.id)).status is CommandStatus.PENDING
    assert await Notification.filter(user_id=account.id).count() == 1
