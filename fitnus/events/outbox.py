"""Domain events published to Kafka after commit, from the outbox table.

Each event is written in the transaction of what it announces; one drainer
at a time (the caller holds a lease) marks a batch of rows as sending,
publishes them in id order, waits until the broker acknowledged them all
(acks=all), then deletes them. A drainer that dies after the broker took a
batch and before the delete leaves marked rows that may be in the log
already: the next drainer asks each partition's log for its last event id
and deletes those rows unsent, so each event is in its topic once, in
order. Without Kafka configured the rows are drained to nowhere (deleted),
so the table never grows.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fitnus.events.models import EventOutbox

SCHEMA_VERSION = 1
AUCTION_BIDS = "fitnus.auction-bids"
AUCTION_RESULTS = "fitnus.auction-results"
TOPICS = (AUCTION_BIDS, AUCTION_RESULTS)
DRAIN_BATCH = 500


class Publisher(Protocol):
    async def partitions(self, topic: str) -> int:
        """How many partitions the topic has."""
        ...

    async def last_event_ids(self, topic: str) -> dict[int, int]:
        """Per partition, the id of the last event in its log (0: none)."""
        ...

    async def publish(self, events: Sequence[Published]) -> None:
        """Each to its partition, in order; returns once all are acknowledged."""
        ...


@dataclass(frozen=True)
class Published:
    """An outbox row as it goes to the broker: its id travels with it."""

    event_id: int
    topic: str
    key: str
    partition: int
    value: dict[str, Any]

    @classmethod
    def of(cls, row: EventOutbox, partitions: int) -> Published:
        return cls(row.id, row.topic, row.key, partition_of(row.key, partitions),
                   {"event_id": row.id, **row.payload})


def partition_of(key: str, partitions: int) -> int:
    """Chosen here, not by the client's partitioner, so the drainer knows
    which partition's log to ask about a row."""
    return zlib.crc32(key.encode()) % partitions


def domain_event(topic: str, key: str, type: str, payload: dict[str, Any], *,
                 now: datetime) -> EventOutbox:
    """An outbox row, to be saved in the transaction of what it announces."""
    return EventOutbox(topic=topic, key=key, created_at=now, payload={
        "schema_version": SCHEMA_VERSION, "type": type, "occurred_at": now.isoformat(),
        **payload})


async def drain_outbox(publisher: Publisher | None, *, now: datetime,
                       batch: int = DRAIN_BATCH) -> int:
    """Publish what the outbox holds, in id order; how many rows it settled."""
    settled = 0
    partitions: dict[str, int] = {}
    # Per (topic, partition), the last event id in its log: asked only when
    # a dead drainer's rows are found.
    logged: dict[tuple[str, int], int] = {}
    while rows := await EventOutbox.all().order_by("id").limit(batch):
        if publisher is not None:
            for topic in {row.topic for row in rows} - set(partitions):
                partitions[topic] = await publisher.partitions(topic)
            for topic in {row.topic for row in rows if row.sending_since is not None}:
                logged |= {(topic, partition): last for partition, last
                           in (await publisher.last_event_ids(topic)).items()}
            fresh = [event for event in (Published.of(row, partitions[row.topic]) for row in rows)
                     if event.event_id > logged.get((event.topic, event.partition), 0)]
            if fresh:
                await EventOutbox.filter(id__in=[event.event_id for event in fresh]).update(
                    sending_since=now)
                await publisher.publish(fresh)
        await EventOutbox.filter(id__lte=rows[-1].id).delete()
        settled += len(rows)
    return settled
