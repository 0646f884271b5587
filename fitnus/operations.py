"""What operators look at when a flash crowd hits: the keyed queues, the
workers' queues (as their broker tells), and commands left pending, all as
they stand now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fitnus.auctions.service import QUEUE_KIND as AUCTION_KIND
from fitnus.booking.service import QUEUE_KIND as TIMESLOT_KIND
from fitnus.clock import as_utc
from fitnus.clubs.meetups import QUEUE_KIND as MEETUP_KIND
from fitnus.commands.models import Command, CommandStatus
from fitnus.errors import NotFound
from fitnus.keyed_queue import KeyedQueue, QueueState
from fitnus.keys import Keys
from fitnus.messages import WorkerQueue
from fitnus.redis_client import RedisClient

KEYED_KINDS = (TIMESLOT_KIND, MEETUP_KIND, AUCTION_KIND)


@dataclass(frozen=True)
class Queues:
    keyed: list[QueueState]
    workers: list[WorkerQueue]
    # Commands (rows) still pending past the redrive delay: a web process
    # died before sending them, or their actor keeps failing.
    pending_commands: int
    # Redis's clock when read (POSIX seconds): the ages count to it.
    taken_at: float


def keyed_queue(redis: RedisClient, keys: Keys, kind: str) -> KeyedQueue:
    if kind not in KEYED_KINDS:
        raise NotFound(f"no keyed queue of kind {kind!r}", code="queue_not_found")
    return KeyedQueue(redis=redis, prefix=keys.prefix, kind=kind)


async def queues_now(redis: RedisClient, keys: Keys, *,
                     worker_queues: Callable[[float], Awaitable[list[WorkerQueue]]],
                     redrive_after: timedelta, now: datetime) -> Queues:
    seconds, micros = await redis.time()
    redis_now = seconds + micros / 1_000_000
    keyed: list[QueueState] = []
    for kind in KEYED_KINDS:
        keyed += await keyed_queue(redis, keys, kind).states(now=redis_now)
    pending = await Command.filter(status=CommandStatus.PENDING,
                                   created_at__lt=as_utc(now - redrive_after)).count()
    return Queues(keyed=keyed, pending_commands=pending, taken_at=redis_now,
                  workers=await worker_queues(redis_now))
