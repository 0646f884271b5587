"""People's commands into one kind of keyed queue (timeslots, meetups, …):
the pending record written and the request queued (``KeyedQueue.enqueue``),
a drain message when the queue needs one, and every copy of an
Idempotency-Key answered with the first. Written once; each kind brings its
own checks and decision."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fitnus.accounts.tokens import Principal
from fitnus.clock import Clock
from fitnus.commands.idempotency import IdempotencyKeys
from fitnus.commands.pending import PendingCommands
from fitnus.keyed_queue import KeyedQueue
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient

log = logging.getLogger(__name__)

# Sends one drain message for a key (a dramatiq message in production).
ScheduleDrain = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Queued:
    command_id: uuid.UUID
    position: int


@dataclass(frozen=True, kw_only=True)
class CommandQueue:
    redis: RedisClient
    keys: Keys
    queue: KeyedQueue
    pending: PendingCommands
    clock: Clock
    schedule_drain: ScheduleDrain

    async def send(self, key: int, *, kind: str, user_id: int, stamped: bool = True,
                   **request: Any) -> Queued:
        """Queue a person's command behind the key's other requests; ``stamped``
        adds its kind and the moment it was accepted (rules count from it)."""
        command_id = uuid.uuid4()
        payload = {"command_id": str(command_id), "user_id": user_id, **request}
        if stamped:
            payload |= {"kind": kind, "accepted_at": self.clock.now().timestamp()}
        enqueued = await self.queue.enqueue(
            key, payload,
            record=self.pending.record(command_id=command_id, user_id=user_id, kind=kind))
        if enqueued.must_schedule_drain:
            try:
                await self.schedule_drain(key)
            except Exception:
                # The request is queued: answer so. The sweeper re-drives a
                # queue whose drain message did not go, once the broker is back.
                log.warning("%s: queued, its drain message not sent", key, exc_info=True)
        return Queued(command_id, enqueued.position)

    async def first_answer(
        self, principal: Principal, idempotency_key: str | None,
        accept: Callable[[], Awaitable[Queued]],
    ) -> Queued:
        """``accept()``, once per Idempotency-Key: every copy gets the first answer."""
        async def answer() -> dict[str, Any]:
            queued = await accept()
            return {"command_id": str(queued.command_id), "position": queued.position}

        if idempotency_key is None:
            return await accept()
        first = await IdempotencyKeys(redis=self.redis, keys=self.keys).first_answer(
            user_id=principal.user_id, key=idempotency_key, answer=answer)
        return Queued(uuid.UUID(first["command_id"]), first["position"])


def keyed_commands(kind: str, *, redis: RedisClient, keys: Keys, pending: PendingCommands,
                   clock: Clock, schedule_drain: ScheduleDrain) -> CommandQueue:
    """People's commands into the keyed queues of one kind (a meetup's, an auction's)."""
    return CommandQueue(redis=redis, keys=keys,
                        queue=KeyedQueue(redis=redis, prefix=keys.prefix, kind=kind),
                        pending=pending, clock=clock, schedule_drain=schedule_drain)


async def send_to_each(queue: KeyedQueue, keys: Iterable[int], *, kind: str,
                       schedule_drain: ScheduleDrain, accepted_at: float | None = None) -> None:
    """A request of the service's own, not a person's command, into each key's
    queue, decided in line with whatever the queue holds already; stamped
    with ``accepted_at`` (POSIX seconds) when the rules count from it."""
    stamp = {} if accepted_at is None else {"accepted_at": accepted_at}
    for key in keys:
        enqueued = await queue.enqueue(
            key, {"kind": kind, "command_id": str(uuid.uuid4()), **stamp})
        if enqueued.must_schedule_drain:
            await schedule_drain(key)
