"""Outcomes of commands travel over Redis pub/sub, one channel per command.

The database row is the truth; a message only says "look again". A web
process listens with one pattern subscription for all commands rather than a
subscription per waiting request: subscribing costs round trips and a
connection per waiter, while the extra messages are tiny.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.pending import PendingCommands
from fitnus.commands.service import command_of
from fitnus.keys import Keys

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 0.5


async def publish_outcome(redis: Redis, keys: Keys, command: Command) -> None:
    """Tell waiting web processes to look; safe to repeat."""
    await redis.publish(keys.command_channel(str(command.id)), command.status.value)


async def publish_outcomes(redis: Redis, keys: Keys, commands: list[Command]) -> None:
    """``publish_outcome`` for many, in one round trip."""
    if not commands:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.publish(keys.command_channel(str(command.id)), command.status.value)
        await pipe.execute()


class OutcomeListener:
    """Lets a request wait for a command's outcome (``Prefer: wait=N``)."""

    def __init__(self, *, redis: Redis, keys: Keys, pending: PendingCommands) -> None:
        self._redis = redis
        self._pending = pending
        self._pattern = keys.command_channel("*")
        self._channel_prefix = keys.command_channel("")
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="command-outcome-listener")
        await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(
        self, *, user_id: int, command_id: uuid.UUID, timeout_seconds: float
    ) -> Command:
        """The command once decided, or as it stands when the timeout runs out."""
        event = asyncio.Event()
        waiters = self._waiters[str(command_id)]
        waiters.add(event)
        try:
            # Registered before the first read: an outcome published between
            # the read and the wait still wakes us.
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
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(str(command_id), None)

    async def _listen(self) -> None:
        while True:
            pubsub: PubSub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._pattern)
                self._subscribed.set()
                async for message in pubsub.listen():
                    self._wake(message)
            except RedisError:
                # A waiter then times out and reads the row: late, never wrong.
                log.warning("command outcome subscription lost, reconnecting", exc_info=True)
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _wake(self, message: dict[str, object]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if not isinstance(channel, str):
            return
        for event in self._waiters.get(channel.removeprefix(self._channel_prefix), ()):
            event.set()
