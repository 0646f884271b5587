"""What a Redis Cluster changes: every key of one timeslot's queue in one
hash slot, timeslots spread over the masters, doorbells heard whichever node
rang them. The rest of the cluster's rules (no script or transaction across
slots) are held by running the suite's ``cluster`` tests on one."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from fitnus.booking.service import QUEUE_KIND
from fitnus.config import Settings
from fitnus.keyed_queue import KeyedQueue
from fitnus.pubsub import ChannelListener
from fitnus.redis_client import is_cluster_url, open_redis
from tests.conftest import BROKER_URL, REDIS_URL

pytestmark = pytest.mark.cluster

TIMESLOTS = 300
# Each part a queue keeps under its key (fitnus.keyed_queue, booking's flag).
QUEUE_PARTS = ("queue", "position", "scheduled", "lease", "fence", "full")


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = open_redis(redis_cluster_url)
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


def test_the_app_and_the_workers_use_what_the_pass_names(
    settings: Settings, broker: dramatiq.Broker,
) -> None:
    """The cluster pass (tests/services_at_scale.py) really runs the suite on
    a cluster with the workers on RabbitMQ; the first pass on one Redis."""
    assert settings.redis_url == REDIS_URL
    assert settings.broker_url == (BROKER_URL or None)
    assert isinstance(broker, RabbitmqBroker) == BROKER_URL.startswith("amqp://")
    if is_cluster_url(REDIS_URL):
        assert isinstance(broker, RabbitmqBroker)


def test_a_timeslots_keys_share_one_slot() -> None:
    queue = KeyedQueue(redis=Redis(), prefix="fitnus:", kind=QUEUE_KIND)
    for timeslot_id in (1, 42, 10_000_019):
        slots = {key_slot(queue.flag(timeslot_id, part).encode()) for part in QUEUE_PARTS}
        assert len(slots) == 1, slots


async def test_timeslots_spread_over_the_masters(cluster: RedisCluster) -> None:
    await cluster.initialize()
    queue = KeyedQueue(redis=cluster, prefix="fitnus:", kind=QUEUE_KIND)
    masters = Counter(cluster.get_node_from_key(queue.flag(timeslot_id, "queue")).name
                      for timeslot_id in range(1, TIMESLOTS + 1))
    assert len(masters) == len(cluster.get_primaries()) == 3
    # Slots are split evenly, and the tags hash evenly: no master takes
    # much more than its third.
    assert max(masters.values()) < TIMESLOTS * 0.45, masters


async def test_a_queue_on_the_cluster_enqueues_drains_and_forgets(cluster: RedisCluster) -> None:
    """The enqueue writes three slots (the record, the item, the sweeper's
    set); each step must be one a cluster accepts."""
    from fitnus.keyed_queue import Record

    queue = KeyedQueue(redis=cluster, prefix=f"test-{secrets.token_hex(3)}:", kind=QUEUE_KIND)
    record = Record(key=f"{queue.active_set()}:pending:{secrets.token_hex(3)}",
                    fields={"user_id": 7, "kind": "reserve_seat"}, ttl_seconds=60)
    first = await queue.enqueue(5, {"user_id": 7}, record=record)
    second = await queue.enqueue(5, {"user_id": 8})
    assert (first.position, first.must_schedule_drain) == (1, True)
    assert (second.position, second.must_schedule_drain) == (2, False)
    assert await cluster.hgetall(record.key) == {b"user_id": b"7", b"kind": b"reserve_seat"}
    assert await queue.active_keys() == ["5"]
    await queue.clear_scheduled(5)  # as a drainer starts
    token = await queue.acquire(5, ttl_ms=5_000)
    assert token is not None
    assert [item.payload["user_id"] for item in await queue.peek(5, 10)] == [7, 8]
    assert await queue.ack(5, token, 2) == 0
    await queue.release(5, token)
    await queue.forget_if_empty(5)
    assert await queue.active_keys() == []


async def test_a_doorbell_rung_on_any_master_wakes_a_listener(cluster: RedisCluster) -> None:
    prefix = f"test-bell-{secrets.token_hex(3)}:"
    listener = ChannelListener(redis=cluster, prefix=prefix)
    await listener.start()
    try:
        for n, master in enumerate(cluster.get_primaries()):
            bell = listener.watch(str(n))
            node = Redis(host=master.host, port=master.port)
            try:
                await node.publish(f"{prefix}{n}", "1")
            finally:
                await node.aclose()
            await asyncio.wait_for(bell.wait(), 5)
    finally:
        await listener.stop()
