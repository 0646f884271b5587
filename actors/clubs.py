from __future__ import annotations

import dramatiq

from actors.booking import publish_decisions
from actors.runtime import runtime
from fitnus.clubs.meetups import drain_meetup, meetup_queue
from fitnus.keyed_queue import sweep


@dramatiq.actor(queue_name="booking", max_retries=50, min_backoff=100, max_backoff=5_000)
async def drain_meetup_queue(*, meetup_id: int) -> None:
    rt = runtime()
    await drain_meetup(meetup_id, redis=rt.redis, keys=rt.keys, clock=rt.clock,
                       published=publish_decisions, windows=rt.settings.claim_windows)


async def meetup_drain_later(meetup_id: int) -> None:
    drain_meetup_queue.send(meetup_id=meetup_id)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def sweep_meetup_queues() -> None:
    rt = runtime()

    async def drain_later(key: str) -> None:
        await meetup_drain_later(int(key))

    await sweep(meetup_queue(rt.redis, rt.keys), schedule_drain=drain_later)
