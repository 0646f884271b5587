from __future__ import annotations

from zoneinfo import ZoneInfo

import dramatiq

from actors.booking import publish_decisions
from actors.kafka import drain_event_outbox
from actors.runtime import runtime
from fitnus.auctions.service import auction_queue, drain_auction, request_due_closes
from fitnus.booking.outcomes import Decisions
from fitnus.keyed_queue import sweep


@dramatiq.actor(queue_name="booking", max_retries=50, min_backoff=100, max_backoff=5_000)
async def drain_auction_queue(*, auction_id: int) -> None:
    rt = runtime()
    await drain_auction(auction_id, redis=rt.redis, keys=rt.keys, clock=rt.clock,
                        zone=ZoneInfo(rt.settings.time_zone), published=publish_and_drain)


async def publish_and_drain(decided: Decisions) -> None:
    """After a batch committed: its people hear of it, and its domain events
    leave the outbox for Kafka."""
    await publish_decisions(decided)
    drain_event_outbox.send()


async def auction_drain_later(auction_id: int) -> None:
    drain_auction_queue.send(auction_id=auction_id)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def close_due_auctions() -> None:
    rt = runtime()
    await request_due_closes(auction_queue(rt.redis, rt.keys), schedule_drain=auction_drain_later,
                             clock=rt.clock)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def sweep_auction_queues() -> None:
    rt = runtime()

    async def drain_later(key: str) -> None:
        await auction_drain_later(int(key))

    await sweep(auction_queue(rt.redis, rt.keys), schedule_drain=drain_later)
