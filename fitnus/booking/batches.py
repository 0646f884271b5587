"""Deciding what waits in a timeslot's keyed queue: in order, in batches, each
batch one database transaction that enforces the invariants itself (see
fitnus.booking.service for the list). The lease only orders the work; its
fencing token is checked by the same transaction, so a drainer whose lease
expired cannot commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from fitnus.booking.cancelling import cancellations, withdrawal
from fitnus.booking.guards import advance_fence
from fitnus.booking.models import Reservation
from fitnus.booking.outcomes import (
    CANCEL_RESERVATION,
    MOVE_RESERVATION,
    RESERVE_SEAT,
    WITHDRAW_TIMESLOT,
    DecidedBatch,
    Decisions,
    giving_up,
    record,
    split_decided,
)
from fitnus.booking.seating import moves, seats
from fitnus.booking.service import timeslot_queue
from fitnus.booking.sold_out import flag_fullness
from fitnus.booking.waiting import TimeslotSeats
from fitnus.centers.models import Timeslot
from fitnus.clock import Clock
from fitnus.commands.queued import ScheduleDrain, send_to_each
from fitnus.db import is_deadlock
from fitnus.keyed_queue import QueuedItem, drain, sweep
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient
from fitnus.waitlist.offers import SWEEP_WAITLIST, WAITLIST_KINDS, Waitlist
from fitnus.waitlist.rules import DEFAULT_WINDOWS, ClaimWindows
from fitnus.wallet.models import Wallet
from fitnus.wallet.service import lock_wallets

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A batch the database rolled back to break a deadlock is decided again at
# once, this many times at most; one lock order everywhere keeps it rare.
DEADLOCK_ATTEMPTS = 3
# Short, and renewed after every batch: a killed drainer's queue is taken
# over by the sweeper within seconds (dramatiq itself would wait minutes).
LEASE_TTL_MS = 3_000


async def drain_timeslot(
    timeslot_id: int, *, redis: RedisClient, keys: Keys, clock: Clock, zone: ZoneInfo,
    published: Callable[[Decisions], Awaitable[None]], schedule_drain: ScheduleDrain,
    windows: ClaimWindows = DEFAULT_WINDOWS, batch_size: int = BATCH_SIZE,
) -> int:
    """Decide everything queued for the timeslot, in order; the number of requests taken."""
    queue = timeslot_queue(redis, keys)

    async def decide(items: Sequence[QueuedItem], token: int) -> DecidedBatch:
        attempt = 1
        while True:
            try:
                return await decide_batch(timeslot_id, items, token=token, clock=clock,
                                          zone=zone, windows=windows)
            except Exception as error:
                # Any error: a deadlock inside a savepoint is the driver's own.
                if not is_deadlock(error) or attempt == DEADLOCK_ATTEMPTS:
                    raise
                log.warning("timeslot %s: batch rolled back by a deadlock, deciding it again",
                            timeslot_id, extra={"deadlock_attempt": attempt})
                attempt += 1

    async def announce(batch: DecidedBatch, token: int) -> None:
        # A cancellation reopens the timeslot; a move frees a seat in the one it left.
        # A seat a move freed elsewhere goes to that timeslot's waitlist
        # first: its next batch offers free seats before anything else.
        await send_to_each(queue, batch.decided.freed, kind=SWEEP_WAITLIST,
                           schedule_drain=schedule_drain, accepted_at=clock.now().timestamp())
        await flag_fullness(redis, queue, timeslot_id, full=batch.full, token=token,
                            reopened_channel=keys.timeslot_reopened, freed=batch.decided.freed)
        await published(batch.decided)

    give_up = giving_up(published, clock, fenced_by=Timeslot, key=timeslot_id)
    return await drain(queue, timeslot_id, decide=decide, announce=announce, give_up=give_up,
                       batch_size=batch_size, lease_ttl_ms=LEASE_TTL_MS)


async def sweep_timeslot_queues(
    *, redis: RedisClient, keys: Keys, schedule_drain: ScheduleDrain
) -> int:
    """Re-drive every timeslot queue that has items and no live lease; returns
    how many were sent."""
    async def drain_later(key: str) -> None:
        await schedule_drain(int(key))

    return await sweep(timeslot_queue(redis, keys), schedule_drain=drain_later)


async def decide_batch(
    timeslot_id: int, items: Sequence[QueuedItem], *, token: int, clock: Clock, zone: ZoneInfo,
    windows: ClaimWindows = DEFAULT_WINDOWS,
) -> DecidedBatch:
    """One transaction for the whole batch, in queue order.

    Locks are taken in one order everywhere: timeslot rows by id (this one,
    and those the batch's moves leave), then every wallet the batch may
    touch, by user id. Runs of seats and cancellations in queue order would
    otherwise take wallets in different orders and deadlock against each
    other's batches.

    A seat freed by a run goes to the waitlist before the next run: people
    in line come before bookings queued after them.

    Commands of the batch decided already (a drainer committed and died, or
    lost its lease, before acknowledging) are returned again, so their
    outcomes are announced by whoever notices.
    """
    now = clock.now()
    async with in_transaction():
        locked = await _lock_timeslots(timeslot_id, items)
        timeslot = locked[timeslot_id]
        await timeslot.fetch_related("program__center")
        await advance_fence(Timeslot, timeslot, token)
        decided, fresh = await split_decided(items)
        waitlist = await Waitlist.of(TimeslotSeats(timeslot), windows)
        # As locked: what the first run reads; later runs read them again.
        wallets = await _lock_wallets_of(timeslot, fresh, waitlist.people_to_lock(), now=now)
        # A seat freed outside this queue (a move's old seat) goes to the line
        # before any booking here.
        offered_first = await waitlist.offer_free_places(now)
        if offered_first.notified:
            decided.add(offered_first)
            wallets = None  # holds changed what the wallets have available
        # Runs of one kind keep the queue order between seats and cancellations:
        # a seat freed at position 10 can go to position 11, or to the waitlist.
        for kind, run in groupby(fresh, key=lambda item: item.payload.get("kind", RESERVE_SEAT)):
            if kind in WAITLIST_KINDS:
                decided.add(await waitlist.decide(kind, list(run), now=now))
            elif kind == CANCEL_RESERVATION:
                decided.add(await cancellations(timeslot, list(run), now=now, zone=zone))
            elif kind == WITHDRAW_TIMESLOT:
                decided.add(await withdrawal(timeslot, now=now))
                decided.add(await record([], await waitlist.end_expired(now=now)))
            elif kind == MOVE_RESERVATION:
                decided.add(await moves(timeslot, list(run), now=now, locked=locked))
            else:
                decided.add(await seats(timeslot, list(run), now=now, wallets=wallets))
            decided.add(await waitlist.offer_free_places(now))
            wallets = None
        decided.add(await waitlist.positions_told(now=now))
        decided.freed.discard(timeslot_id)
        return DecidedBatch(decided, timeslot.reserved + timeslot.offered >= timeslot.capacity)


async def _lock_timeslots(timeslot_id: int, items: Sequence[QueuedItem]) -> dict[int, Timeslot]:
    """This timeslot and the ones its moves leave, locked by id."""
    moving = [item.payload["reservation_id"] for item in items
              if item.payload.get("kind") == MOVE_RESERVATION]
    left = await Reservation.filter(id__in=moving).values_list(
        "timeslot_id", flat=True) if moving else []
    return {
        timeslot.id: timeslot for timeslot in await Timeslot.select_for_update().filter(
            id__in=[timeslot_id, *left]).order_by("id")
    }


async def _lock_wallets_of(
    timeslot: Timeslot, items: Sequence[QueuedItem], waiting: set[int], *, now: datetime,
) -> dict[int, Wallet] | None:
    people = {item.payload["user_id"] for item in items if "user_id" in item.payload} | waiting
    if any(item.payload.get("kind") == WITHDRAW_TIMESLOT for item in items):
        people |= set(await Reservation.filter(timeslot_id=timeslot.id, active=True)
                      .values_list("user_id", flat=True))
    return await lock_wallets(people, now=now)
