"""The outbox's publisher on Kafka (aiokafka), and the actor that drains it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from types import TracebackType

import dramatiq
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from actors.runtime import runtime
from fitnus.events.outbox import Published, drain_outbox
from fitnus.keyed_queue import KeyedQueue

log = logging.getLogger(__name__)

# One drainer at a time keeps each partition's log in outbox order; renewed
# every batch, and longer than a batch's sends may take (aiokafka's request
# timeout is 40 s).
LEASE_TTL_MS = 120_000
LAST_EVENT_TIMEOUT_MS = 5_000


class KafkaPublisher:
    """An idempotent producer with acks=all, and a consumer that reads the
    last event of a partition."""

    def __init__(self, bootstrap_servers: str, *, idempotent: bool = True) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=idempotent,
            key_serializer=str.encode,
            value_serializer=lambda value: json.dumps(value, ensure_ascii=False).encode())
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                                          enable_auto_commit=False)

    async def __aenter__(self) -> KafkaPublisher:
        await self._producer.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self._consumer.stop()
        await self._producer.stop()

    async def partitions(self, topic: str) -> int:
        return len(await self._producer.partitions_for(topic))

    async def last_events(self, topic: str) -> dict[int, tuple[int, int]]:
        parts = [TopicPartition(topic, partition)
                 for partition in range(await self.partitions(topic))]
        self._consumer.assign(parts)
        ends = await self._consumer.end_offsets(parts)
        last: dict[int, tuple[int, int]] = {}
        for part in parts:
            if ends[part] == 0:
                continue
            # From the last offset on: Kafka gives its last record; a broker
            # that counts offsets by batch (Tansu) the whole last batch.
            self._consumer.seek(part, ends[part] - 1)
            fetched = (await self._consumer.getmany(part, timeout_ms=LAST_EVENT_TIMEOUT_MS)
                       ).get(part)
            if not fetched:
                raise RuntimeError(f"{topic}/{part.partition}: its last message did not come")
            value = json.loads(fetched[-1].value)
            last[part.partition] = (int(value["drainer"]), int(value["event_id"]))
        return last

    async def publish(self, events: Sequence[Published]) -> None:
        sent = [await self._producer.send(event.topic, event.value, key=event.key,
                                          partition=event.partition) for event in events]
        await asyncio.gather(*sent)


@dramatiq.actor(queue_name="maintenance", max_retries=3, min_backoff=1_000)
async def drain_event_outbox() -> None:
    rt = runtime()
    lease = KeyedQueue(redis=rt.redis, prefix=rt.keys.prefix, kind="event-outbox")
    token = await lease.acquire(0, ttl_ms=LEASE_TTL_MS)
    if token is None:
        return  # another drainer is at it, and goes on until the outbox is empty

    async def still_draining() -> bool:
        return bool(await lease.renew(0, token, ttl_ms=LEASE_TTL_MS))

    try:
        servers = rt.settings.kafka_bootstrap_servers
        if servers is None:
            await drain_outbox(None, drainer=token, still_draining=still_draining)
            return
        async with KafkaPublisher(servers, idempotent=rt.settings.kafka_idempotent_producer
                                  ) as publisher:
            await drain_outbox(publisher, drainer=token, still_draining=still_draining)
    finally:
        await lease.release(0, token)
