"""Deciding what waits in a timeslot's keyed queue: in order, in batches, each
batch one database transaction that enforces the invariants itself (see
fitnus.booking.service for the list). The lease only orders the work; its
fencing token is checked by the same transaction, so a drainer whose lease
expired cannot commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from redis.asyncio import Redis
from tortoise.exceptions import OperationalError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.booking import rules
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.booking.outcomes import (
    CANCEL_RESERVATION,
    RESERVE_SEAT,
    Decided,
    failed,
    succeeded,
)
from fitnus.booking.service import ScheduleDrain, timeslot_queue
from fitnus.centers.models import Timeslot
from fitnus.clock import Clock
from fitnus.commands.models import Command
from fitnus.db import is_deadlock
from fitnus.keyed_queue import QueuedItem, StaleLease, drain, sweep
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.wallet.models import LedgerKind, Wallet
from fitnus.wallet.service import debit_locked, lock_wallets, post_entry

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A batch the database rolled back to break a deadlock is decided again at
# once, this many times at most; one lock order everywhere keeps it rare.
DEADLOCK_ATTEMPTS = 3
# Short, and renewed after every batch: a killed drainer's queue is taken
# over by the sweeper within seconds (dramatiq itself would wait minutes).
LEASE_TTL_MS = 3_000


@dataclass(frozen=True)
class TimeslotBatch:
    """What one committed batch decided, and whether its timeslot is full."""

    outcomes: list[Decided]
    full: bool


async def drain_timeslot(
    timeslot_id: int, *, redis: Redis, keys: Keys, clock: Clock,
    published: Callable[[list[Decided]], Awaitable[None]], batch_size: int = BATCH_SIZE,
) -> int:
    """Decide everything queued for the timeslot, in order; the number of requests taken."""
    queue = timeslot_queue(redis, keys)

    async def decide(items: Sequence[QueuedItem], token: int) -> TimeslotBatch:
        attempt = 1
        while True:
            try:
                return await decide_batch(timeslot_id, items, token=token, clock=clock)
            except OperationalError as error:
                if not is_deadlock(error) or attempt == DEADLOCK_ATTEMPTS:
                    raise
                log.warning("timeslot %s: batch rolled back by a deadlock, deciding it again",
                            timeslot_id, extra={"deadlock_attempt": attempt})
                attempt += 1

    async def announce(batch: TimeslotBatch) -> None:
        # The fast path's flag follows the committed count both ways: a
        # cancellation reopens the timeslot, and web processes that remember
        # it full hear so (fitnus.booking.sold_out).
        if batch.full:
            await redis.set(queue.flag(timeslot_id, "full"), "1")
        elif await redis.delete(queue.flag(timeslot_id, "full")):
            await redis.publish(keys.timeslot_reopened(str(timeslot_id)), "1")
        await published(batch.outcomes)

    return await drain(queue, timeslot_id, decide=decide, announce=announce,
                       batch_size=batch_size, lease_ttl_ms=LEASE_TTL_MS)


async def sweep_timeslot_queues(
    *, redis: Redis, keys: Keys, schedule_drain: ScheduleDrain
) -> int:
    """Re-drive every timeslot queue that has items and no live lease; returns
    how many were sent."""
    async def drain_later(key: str) -> None:
        await schedule_drain(int(key))

    return await sweep(timeslot_queue(redis, keys), schedule_drain=drain_later)


async def decide_batch(
    timeslot_id: int, items: Sequence[QueuedItem], *, token: int, clock: Clock
) -> TimeslotBatch:
    """One transaction for the whole batch, in queue order.

    Locks are taken in one order everywhere: the timeslot row, then every
    wallet the batch may touch, by user id. Runs of seats and cancellations
    in queue order would otherwise take wallets in different orders and
    deadlock against each other's batches.

    Commands of the batch decided already (a drainer committed and died, or
    lost its lease, before acknowledging) are returned again, so their
    outcomes are announced by whoever notices.
    """
    now = clock.now()
    async with in_transaction():
        timeslot = await Timeslot.select_for_update().get(id=timeslot_id).prefetch_related(
            "program__center"
        )
        # Compared on the locked row, not by an UPDATE's row count: MySQL counts
        # changed rows, and the same holder's next batch changes nothing.
        if timeslot.drain_fence > token:
            raise StaleLease(timeslot_id)
        if timeslot.drain_fence < token:
            await Timeslot.filter(id=timeslot_id).update(drain_fence=token)
        decided_already = await Command.filter(
            id__in=[item.payload["command_id"] for item in items]
        )
        outcomes = [Decided(command, command.user_id)  # type: ignore[attr-defined]
                    for command in decided_already]
        known = {str(command.id) for command in decided_already}
        fresh = [item for item in items if item.payload["command_id"] not in known]
        await _lock_wallets_of(fresh)
        # Runs of one kind keep the queue order between seats and cancellations:
        # a seat freed at position 10 can go to position 11.
        for kind, run in groupby(fresh, key=lambda item: item.payload.get("kind", RESERVE_SEAT)):
            if kind == CANCEL_RESERVATION:
                outcomes += await _cancellations(timeslot, list(run), now=now)
            else:
                outcomes += await _seats(timeslot, list(run), now=now)
        return TimeslotBatch(outcomes, timeslot.reserved >= timeslot.capacity)


async def _lock_wallets_of(items: Sequence[QueuedItem]) -> None:
    await lock_wallets({item.payload["user_id"] for item in items})


async def _seats(timeslot: Timeslot, items: list[QueuedItem], *, now: datetime) -> list[Decided]:
    requests = [
        rules.SeatRequest(item.position, item.payload["command_id"], item.payload["user_id"])
        for item in items
    ]
    users = {request.user_id for request in requests}
    price = timeslot.program.price_coupons
    # Held since the start of the batch; read again for what earlier runs changed.
    wallets = await lock_wallets(users)
    decisions = rules.decide_seats(
        requests,
        seats_left=timeslot.capacity - timeslot.reserved,
        price=price,
        available={user: wallet.balance - wallet.held for user, wallet in wallets.items()},
        holders={
            reservation.user_id  # type: ignore[attr-defined]
            for reservation in await Reservation.filter(
                timeslot_id=timeslot.id, user_id__in=users, active=True
            )
        },
        conflicting={
            reservation.user_id  # type: ignore[attr-defined]
            for reservation in await Reservation.filter(
                user_id__in=users, active=True, starts_at__lt=timeslot.ends_at,
                ends_at__gt=timeslot.starts_at,
            ).exclude(timeslot_id=timeslot.id)
        },
        # Web processes remember timeslots for a while: a request may be
        # queued after its center was deleted.
        is_open=timeslot.starts_at > now and timeslot.program.center.deleted_at is None,
    )
    outcomes = await _apply_seats(timeslot, decisions, price=price, now=now, wallets=wallets)
    seated = sum(1 for decision in decisions if decision.confirmed)
    if seated:
        await _move_seats(timeslot, seated)
    return outcomes


async def _move_seats(timeslot: Timeslot, change: int) -> None:
    """The database has the last word on capacity, whatever the rule decided."""
    moved = await Timeslot.filter(
        id=timeslot.id, reserved__lte=timeslot.capacity - change, reserved__gte=-change
    ).update(reserved=F("reserved") + change)
    if moved != 1:
        raise RuntimeError(f"timeslot {timeslot.id}: {change:+} seats breaks its bounds")
    timeslot.reserved += change


async def _apply_seats(
    timeslot: Timeslot, decisions: list[rules.SeatDecision], *, price: int, now: datetime,
    wallets: dict[int, Wallet],
) -> list[Decided]:
    """Write the batch's decisions in a few statements, whatever its size: the
    first batch of a flash crowd holds the timeslot's lock while it writes."""
    seated = [decision.request for decision in decisions if decision.confirmed]
    if seated and price > 0:  # a free session moves no coupons
        await debit_locked(
            [(wallets[request.user_id], f"reservation:{request.command_id}")
             for request in seated],
            amount=price, kind=LedgerKind.BOOKING_DEBIT, now=now,
            center_id=timeslot.program.center_id,  # type: ignore[attr-defined]
        )
    reservation_ids: dict[str, int] = {}
    if seated:
        await Reservation.bulk_create([
            Reservation(
                user_id=request.user_id, timeslot_id=timeslot.id,
                status=ReservationStatus.CONFIRMED, active=True, price_coupons=price,
                starts_at=timeslot.starts_at, ends_at=timeslot.ends_at,
                command_id=request.command_id, created_at=now,
            )
            for request in seated
        ])
        # bulk_create returns no ids on MySQL: the command id finds them.
        reservation_ids = {
            str(command_id): reservation_id for command_id, reservation_id in
            await Reservation.filter(
                command_id__in=[request.command_id for request in seated]
            ).values_list("command_id", "id")
        }
    commands: list[Command] = []
    notifications: list[Notification] = []
    for decision in decisions:
        request = decision.request
        if decision.confirmed:
            reservation_id = reservation_ids[str(request.command_id)]
            commands.append(succeeded(request.command_id, request.user_id, RESERVE_SEAT,
                                       {"reservation_id": reservation_id}, now))
            notifications.append(_event(request.user_id, "reservation.confirmed", {
                "reservation_id": reservation_id, "timeslot_id": timeslot.id,
                "command_id": request.command_id}, request.command_id, now))
        else:
            commands.append(failed(request.command_id, request.user_id, RESERVE_SEAT,
                                    decision.outcome, now))
            notifications.append(_event(request.user_id, "reservation.rejected", {
                "timeslot_id": timeslot.id, "command_id": request.command_id,
                "code": decision.outcome}, request.command_id, now))
    return await _record(commands, notifications)


async def _cancellations(
    timeslot: Timeslot, items: list[QueuedItem], *, now: datetime
) -> list[Decided]:
    commands: list[Command] = []
    notifications: list[Notification] = []
    center_id = timeslot.program.center_id  # type: ignore[attr-defined]
    for item in items:
        command_id, user_id = item.payload["command_id"], item.payload["user_id"]
        reservation = await Reservation.get_or_none(
            id=item.payload["reservation_id"], user_id=user_id, timeslot_id=timeslot.id
        )
        if reservation is None:
            commands.append(failed(command_id, user_id, CANCEL_RESERVATION,
                                    rules.NOT_RESERVED, now))
            continue
        refund = rules.refund_for_cancellation(
            price=reservation.price_coupons, starts_at=timeslot.starts_at,
            now=accepted_at(item, default=now),
        )
        if reservation.status is ReservationStatus.CANCELLED:
            commands.append(succeeded(command_id, user_id, CANCEL_RESERVATION,
                                       {"reservation_id": reservation.id,
                                        "refunded_coupons": 0}, now))
            continue
        if refund is None:
            commands.append(failed(command_id, user_id, CANCEL_RESERVATION,
                                    rules.ALREADY_STARTED, now))
            continue
        reservation.status, reservation.active = ReservationStatus.CANCELLED, None
        reservation.cancelled_at = now
        await reservation.save(update_fields=["status", "active", "cancelled_at"])
        if refund:
            await post_entry(
                user_id=user_id, kind=LedgerKind.BOOKING_REFUND, amount=refund,
                reference=f"cancellation:{reservation.id}", now=now, center_id=center_id,
            )
        await _move_seats(timeslot, -1)
        result = {"reservation_id": reservation.id, "refunded_coupons": refund}
        commands.append(succeeded(command_id, user_id, CANCEL_RESERVATION, result, now))
        notifications.append(_event(user_id, "reservation.cancelled",
                                    {**result, "timeslot_id": timeslot.id}, command_id, now))
    return await _record(commands, notifications)


def accepted_at(item: QueuedItem, *, default: datetime) -> datetime:
    """When the web tier accepted the request: the moment the refund and move
    windows count from, however long the queue kept it. Requests queued by a
    web process older than the stamp count from the decision."""
    stamp = item.payload.get("accepted_at")
    return default if stamp is None else datetime.fromtimestamp(stamp, UTC)


def _event(
    user_id: int, type: str, payload: dict[str, Any], command_id: str, now: datetime
) -> Notification:
    return Notification(user_id=user_id, type=type, payload=payload,
                        dedupe_key=f"{type}:{command_id}", created_at=now)


async def _record(commands: list[Command], notifications: list[Notification]) -> list[Decided]:
    if commands:
        await Command.bulk_create(commands)
    if notifications:
        await Notification.bulk_create(notifications)
    return [Decided(command, command.user_id) for command in commands]  # type: ignore[attr-defined]
