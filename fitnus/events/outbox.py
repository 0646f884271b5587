"""Domain events published to Kafka after commit, from the outbox table.

Each event is written in the transaction of what it announces; one drainer
at a time (the caller holds a lease, whose token names the drainer) marks a
batch of rows as its own, publishes them in id order with its token in each
message, waits until the broker acknowledged them all (acks=all), then
deletes exactly those rows. A drainer that dies after the broker took part
of a batch leaves marked rows: the next one reads each partition's last
message, and if that drainer wrote it, the dead drainer's rows on that
partition up to its event id are in the log (a drainer sends in id order)
and are deleted unsent. Rows committed late with a smaller id than others
are never mistaken for sent: only the dead drainer's marked rows are
checked. Without Kafka configured the rows are drained to nowhere
(deleted), so the table never grows.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Sequence
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

    async def last_events(self, topic: str) -> dict[int, tuple[int, int]]:
        """Per partition with messages, its last message's (drainer, event id)."""
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
    def of(cls, row: EventOutbox, partitions: int, *, drainer: int) -> Published:
        return cls(row.id, row.topic, row.key, partition_of(row.key, partitions),
                   {"event_id": row.id, "drainer": drainer, **row.payload})


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


async def drain_outbox(publisher: Publisher | None, *, drainer: int,
                       still_draining: Callable[[], Awaitable[bool]],
                       batch: int = DRAIN_BATCH) -> int:
    """Publish what the outbox holds, in id order, while ``still_draining()``
    (the lease); how many rows it settled."""
    settled = 0
    partitions: dict[str, int] = {}
    while await still_draining() and (
            rows := await EventOutbox.all().order_by("id").limit(batch)):
        if publisher is not None:
            for topic in {row.topic for row in rows} - set(partitions):
                partitions[topic] = await publisher.partitions(topic)
            sent = await _sent_by_the_dead(publisher, rows, partitions)
            fresh = [Published.of(row, partitions[row.topic], drainer=drainer)
                     for row in rows if row.id not in sent]
            if fresh:
                await EventOutbox.filter(id__in=[event.event_id for event in fresh]).update(
                    sent_by=drainer)
                await publisher.publish(fresh)
        await EventOutbox.filter(id__in=[row.id for row in rows]).delete()
        settled += len(rows)
    return settled


async def _sent_by_the_dead(publisher: Publisher, rows: Sequence[EventOutbox],
                            partitions: dict[str, int]) -> set[int]:
    """Rows a drainer that died had published already."""
    marked = [row for row in rows if row.sent_by is not None]
    last = {(topic, partition): message for topic in {row.topic for row in marked}
            for partition, message in (await publisher.last_events(topic)).items()}
    sent = set()
    for row in marked:
        drainer, event_id = last.get((row.topic, partition_of(row.key, partitions[row.topic])),
                                     (None, 0))
        if drainer == row.sent_by and row.id <= event_id:
            sent.add(row.id)
    return sent
