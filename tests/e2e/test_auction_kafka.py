"""Auction bids and results on Kafka, published after commit from the outbox,
against a real Kafka-protocol broker (Tansu, from its wheel): a consumer
reads back exactly the committed bids, in order, once each, also after a
drainer died between the broker's acknowledgement and its delete."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from fitnus.auctions import service
from fitnus.auctions.models import Bid
from fitnus.booking.outcomes import Decisions
from fitnus.clock import system_clock
from fitnus.config import Settings
from fitnus.events.models import EventOutbox
from fitnus.events.outbox import AUCTION_BIDS, AUCTION_RESULTS, Published, drain_outbox
from fitnus.keys import Keys
from tests.e2e.test_auctions import bid, bidder, moment, new_auction

Client = TestClient[Any, Any]
UTC_ZONE = service.UTC_ZONE


class DiesAfterPublishing:
    """A drainer's publisher whose process dies once the broker has the
    batch, before the rows are deleted."""

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher

    async def partitions(self, topic: str) -> int:
        count: int = await self.publisher.partitions(topic)
        return count

    async def last_events(self, topic: str) -> dict[int, tuple[int, int]]:
        last: dict[int, tuple[int, int]] = await self.publisher.last_events(topic)
        return last

    async def publish(self, events: Sequence[Published]) -> None:
        await self.publisher.publish(events)
        raise RuntimeError("killed after the broker acknowledged")


async def consumed(servers: str, topic: str, auction_id: int) -> list[dict[str, Any]]:
    """Every event of the auction in the topic, in log order."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        idle = 0
        while idle < 2:
            fetched = await consumer.getmany(timeout_ms=1_000)
            idle = 0 if fetched else idle + 1
            for records in fetched.values():
                found += [value for value in (json.loads(record.value) for record in records)
                          if value["auction_id"] == auction_id]
    finally:
        await consumer.stop()
    return found


async def bids_decided(client: Client, sign_up: Any, redis: Redis, settings: Settings,
                       *, close: bool) -> int:
    """An auction with bids accepted over HTTP, decided by its queue's drain
    (no worker: its drain message would empty the outbox to nowhere)."""
    owner = await sign_up("owner")
    people = [await bidder(sign_up, 100) for _ in range(3)]
    auction = await new_auction(client, owner, ends_at=moment(seconds=2 if close else 3600),
                                soft_close_seconds=0)
    for person, amount in zip(people * 2, (10, 11, 12, 5, 20, 30), strict=True):
        response = await bid(client, person, auction["id"], wait=False, amount=amount)
        # 5 is under the starting price: refused at the door.
        assert response.status == (409 if amount == 5 else 202), await response.text()
    keys = Keys(settings.redis_key_prefix)

    async def quiet(decided: Decisions) -> None:
        return None

    async def drain() -> None:
        await service.drain_auction(auction["id"], redis=redis, keys=keys, clock=system_clock,
                                    zone=UTC_ZONE, published=quiet)

    await drain()
    if close:
        left = datetime.fromisoformat(auction["ends_at"]) - datetime.now(UTC)
        await asyncio.sleep(max(left.total_seconds(), 0)
                            + service.CLOSE_GRACE.total_seconds() + 0.1)
        await service.request_due_closes(service.auction_queue(redis, keys),
                                         schedule_drain=lambda _: quiet(Decisions()),
                                         clock=system_clock)
        await drain()
    auction_id: int = auction["id"]
    return auction_id


async def leased() -> bool:
    """The drainer's lease, which these tests hold throughout."""
    return True


async def committed_bids(auction_id: int) -> list[str]:
    return [str(command_id) for command_id in await Bid.filter(auction_id=auction_id)
            .order_by("id").values_list("command_id", flat=True)]


async def test_committed_bids_and_the_result_reach_kafka_once_each_in_order(
    client: Client, sign_up: Any, redis: Redis, settings: Settings, kafka_servers: str,
) -> None:
    from actors.kafka import KafkaPublisher

    auction_id = await bids_decided(client, sign_up, redis, settings, close=True)
    async with KafkaPublisher(kafka_servers, idempotent=False) as publisher:
        await drain_outbox(publisher, drainer=1, still_draining=leased)
    assert not await EventOutbox.exists()
    events = await consumed(kafka_servers, AUCTION_BIDS, auction_id)
    assert [event["command_id"] for event in events] == await committed_bids(auction_id)
    assert {(event["schema_version"], event["type"]) for event in events} == {(1, "auction.bid")}
    (result,) = await consumed(kafka_servers, AUCTION_RESULTS, auction_id)
    assert (result["type"], result["final_price"]) == ("auction.closed", 30)


@pytest.mark.parametrize("asks_the_log", [True, pytest.param(False, marks=pytest.mark.control)])
async def test_a_drainer_that_died_after_the_broker_took_its_batch_sends_nothing_twice(
    client: Client, sign_up: Any, redis: Redis, settings: Settings, kafka_servers: str,
    monkeypatch: pytest.MonkeyPatch, asks_the_log: bool,
) -> None:
    """The guard: the next drainer asks each partition's log for its last
    event id before sending a dead drainer's rows. Off (the control): they
    are sent again."""
    from actors.kafka import KafkaPublisher

    auction_id = await bids_decided(client, sign_up, redis, settings, close=False)
    async with KafkaPublisher(kafka_servers, idempotent=False) as publisher:
        with pytest.raises(RuntimeError, match="killed"):
            await drain_outbox(DiesAfterPublishing(publisher), drainer=2, still_draining=leased)
    assert await EventOutbox.filter(sent_by=2).exists()
    if not asks_the_log:
        async def nothing_logged(self: Any, topic: str) -> dict[int, tuple[int, int]]:
            return {}

        monkeypatch.setattr(KafkaPublisher, "last_events", nothing_logged)
    async with KafkaPublisher(kafka_servers, idempotent=False) as publisher:
        await drain_outbox(publisher, drainer=3, still_draining=leased)
    sent = [event["command_id"] for event in await consumed(kafka_servers, AUCTION_BIDS,
                                                            auction_id)]
    if asks_the_log:
        assert sent == await committed_bids(auction_id)
    else:
        assert len(sent) > len(set(sent))
