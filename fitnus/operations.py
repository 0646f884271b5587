"""What operators look at when a flash crowd hits: the keyed queues, the
workers' queues (dramatiq's, read from its Redis keys), and commands left
pending, all as they stand now."""

from __future__ import annotations

import json
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
from fitnus.redis_client import RedisClient

KEYED_KINDS = (TIMESLOT_KIND, MEETUP_KIND, AUCTION_KIND)


@dataclass(frozen=True)
class WorkerQueue:
    """One of dramatiq's queues: ready, delayed (retries, ETAs) and dead-lettered."""

    queue: str
    ready: int
    delayed: int
    dead: int
    oldest_age_s: float | None


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


async def worker_queues(redis: RedisClient, *, namespace: str, names: list[str],
                        now: float) -> list[WorkerQueue]:
    """Read from the keys dramatiq's Redis broker keeps: ``ns:q`` (ready
    message ids, oldest first), ``ns:q.msgs``, ``ns:q.DQ``, ``ns:q.XQ``."""
    found = []
    for name in sorted(names):
        queue = f"{namespace}:{name}"
        async with redis.pipeline(transaction=False) as pipe:
            pipe.llen(queue)
            pipe.llen(f"{queue}.DQ")
            pipe.zcard(f"{queue}.XQ")
            pipe.lindex(queue, 0)
            ready, delayed, dead, oldest = await pipe.execute()
        age = None
        if oldest is not None:
            message = await redis.hget(f"{queue}.msgs", oldest)
            if message is not None:
                age = round(now - json.loads(message)["message_timestamp"] / 1000, 3)
        found.append(WorkerQueue(name, int(ready), int(delayed), int(dead), age))
    return found


async def queues_now(redis: RedisClient, keys: Keys, *, namespace: str,
                     worker_queue_names: list[str], redrive_after: timedelta,
                     now: datetime) -> Queues:
    seconds, micros = await redis.time()
    redis_now = seconds + micros / 1_000_000
    keyed: list[QueueState] = []
    for kind in KEYED_KINDS:
        keyed += await keyed_queue(redis, keys, kind).states(now=redis_now)
    pending = await Command.filter(status=CommandStatus.PENDING,
                                   created_at__lt=as_utc(now - redrive_after)).count()
    return Queues(keyed=keyed, pending_commands=pending, taken_at=redis_now,
                  workers=await worker_queues(redis, namespace=namespace,
                                              names=worker_queue_names, now=redis_now))
