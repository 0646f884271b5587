"""Outcomes of commands travel over Redis pub/sub, one message per batch
naming its commands. The database row is the truth; a message only says
"look again"."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.pending import PendingCommands
from fitnus.commands.service import command_of
from fitnus.keys import Keys
from fitnus.pubsub import ChannelListener, ring_many
from fitnus.redis_client import RedisClient


async def publish_outcomes(redis: RedisClient, keys: Keys, commands: list[Command]) -> None:
    """Tell waiting web processes to look, one message for a batch; safe to repeat."""
    await ring_many(redis, keys.command_channel(""), (str(command.id) for command in commands))


class OutcomeListener:
    """Lets a request wait for a command's outcome (``Prefer: wait=N``).

    One pattern subscription for all commands rather than one per waiting
    request: subscribing costs round trips and a connection per waiter,
    while the extra messages are tiny.
    """

    def __init__(self, *, redis: RedisClient, keys: Keys, pending: PendingCommands) -> None:
        self._listener = ChannelListener(redis=redis, prefix=keys.command_channel(""))
        self._pending = pending

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def wait(
        self, *, user_id: int, command_id: uuid.UUID, timeout_seconds: float
    ) -> Command:
        """The command once decided, or as it stands when the timeout runs out."""
        event = self._listener.watch(str(command_id))
        try:
            # Watched before the first read: an outcome published between the
            # read and the wait still wakes us.
            command = await command_of(
                user_id=user_id, command_id=command_id, pending=self._pending
            )
            if command.status is not CommandStatus.PENDING:
                return command
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_seconds)
            return await command_of(
                user_id=user_id, command_id=command_id, pending=self._pending
            )
        finally:
            self._listener.unwatch(str(command_id), event)
