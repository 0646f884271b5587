"""What the web tier asks the workers to do, as plain callables.

The composition roots bind them to dramatiq actors; the domain only sees
these signatures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fitnus.auctions.service import QUEUE_KIND as AUCTION_KIND
from fitnus.booking.service import QUEUE_KIND as TIMESLOT_KIND
from fitnus.centers.service import IndexCenter
from fitnus.clubs.meetups import QUEUE_KIND as MEETUP_KIND
from fitnus.commands.queued import ScheduleDrain
from fitnus.commands.service import Dispatch


@dataclass(frozen=True)
class WorkerQueue:
    """One of the workers' queues: ready, delayed (retries, ETAs) and dead-lettered."""

    queue: str
    ready: int
    delayed: int
    dead: int
    oldest_age_s: float | None


async def no_worker_queues(now: float) -> list[WorkerQueue]:
    return []


@dataclass(frozen=True, kw_only=True)
class Messages:
    dispatch: Dispatch
    index_center: IndexCenter
    schedule_drain: ScheduleDrain
    schedule_meetup_drain: ScheduleDrain
    schedule_auction_drain: ScheduleDrain
    # Work on a batch run (fitnus.batches) now.
    run_batch: Callable[[int], Awaitable[None]]
    # The workers' queues as they stand at ``now`` (POSIX seconds, for the
    # oldest message's age): what operators look at.
    worker_queues: Callable[[float], Awaitable[list[WorkerQueue]]] = no_worker_queues

    def drain(self, kind: str) -> ScheduleDrain:
        """The drain message of a kind of keyed queue (fitnus.operations.KEYED_KINDS)."""
        return {TIMESLOT_KIND: self.schedule_drain, MEETUP_KIND: self.schedule_meetup_drain,
                AUCTION_KIND: self.schedule_auction_drain}[kind]
