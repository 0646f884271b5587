"""Deciding what waits in a timeslot's keyed queue: in order, in batches, each
batch one database transaction that enforces the invariants itself (see
fitnus.booking.service for the list). The lease only orders the work; its
fencing token is checked by the same transaction, so a drainer whose lease
expired cannot commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

from redis.asyncio import Redis
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
from fitnus.keyed_queue import QueuedItem
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.wallet.models import LedgerKind, Wallet
from fitnus.wallet.service import debit_locked, post_entry

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# Short, and renewed after every batch: a killed drainer's queue is taken
# over by the sweeper within seconds (dramatiq itself would wait minutes).
LEASE_TTL_MS = 3_000


class StaleLease(Exception):
    """Our lease expired and another drainer committed after us."""


async def drain_timeslot(
    timeslot_id: int, *, redis: Redis, keys: Keys, clock: Clock,
    published: Callable[[list[Decided]], Awaitable[None]], batch_size: int = BATCH_SIZE,
) -> int:
    """Decide everything queued for the timeslot, in order; the number decided.

    Returns at once when another drainer holds the lease: that one goes on
    until the queue is empty, and checks again after releasing.
    """
    queue = timeslot_queue(redis, keys)
    await queue.clear_scheduled(timeslot_id)
    decided = 0
    while True:
        token = await queue.acquire(timeslot_id, ttl_ms=LEASE_TTL_MS)
        if token is None:
            return decided
        try:
            while items := await queue.peek(timeslot_id, batch_size):
                started = time.perf_counter()
                outcomes, full = await decide_batch(timeslot_id, items, token=token, clock=clock)
                log.info("timeslot %s: batch of %d decided in %.1f ms", timeslot_id, len(items),
                         (time.perf_counter() - started) * 1000)
                # The fast path's flag follows the committed count both ways:
                # a cancellation reopens the timeslot, and web processes that
                # remember it full hear so (fitnus.booking.sold_out).
                if full:
                    await redis.set(queue.flag(timeslot_id, "full"), "1")
                elif await redis.delete(queue.flag(timeslot_id, "full")):
                    await redis.publish(keys.timeslot_reopened(str(timeslot_id)), "1")
                if await queue.ack(timeslot_id, token, len(items)) is None:
                    return decided  # lease lost: the new holder takes over
                await published(outcomes)
                decided += len(outcomes)
                await queue.renew(timeslot_id, token, ttl_ms=LEASE_TTL_MS)
        except StaleLease:
            return decided
        finally:
            await queue.release(timeslot_id, token)
        # Requests that arrived between the last peek and the release.
        if await queue.length(timeslot_id) == 0:
            await queue.forget_if_empty(timeslot_id)
            return decided


async def sweep_timeslot_queues(
    *, redis: Redis, keys: Keys, schedule_drain: ScheduleDrain
) -> int:
    """Re-drive every timeslot queue that has items and no live lease (its
    drainer died, or its message was lost); returns how many were sent."""
    queue = timeslot_queue(redis, keys)
    sent = 0
    for key in await queue.active_keys():
        if await queue.length(key) == 0:
            await queue.forget_if_empty(key)
        elif not await queue.leased(key):
            await schedule_drain(int(key))
            sent += 1
    return sent


async def decide_batch(
    timeslot_id: int, items: Sequence[QueuedItem], *, token: int, clock: Clock
) -> tuple[list[Decided], bool]:
    """One transaction for the whole batch, in queue order; returns the outcomes
    and whether the timeslot is full afterwards."""
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
        decided_already = {
            str(command_id) for command_id in await Command.filter(
                id__in=[item.payload["command_id"] for item in items]
            ).values_list("id", flat=True)
        }
        fresh = [item for item in items if item.payload["command_id"] not in decided_already]
        outcomes: list[Decided] = []
        # Runs of one kind keep the queue order between seats and cancellations:
        # a seat freed at position 10 can go to position 11.
        for kind, run in groupby(fresh, key=lambda item: item.payload.get("kind", RESERVE_SEAT)):
            if kind == CANCEL_RESERVATION:
                outcomes += await _cancellations(timeslot, list(run), now=now)
            else:
                outcomes += await _seats(timeslot, list(run), now=now)
        return outcomes, timeslot.reserved >= timeslot.capacity


async def _seats(timeslot: Timeslot, items: list[QueuedItem], *, now: datetime) -> list[Decided]:
    requests = [
        rules.SeatRequest(item.position, item.payload["command_id"], item.payload["user_id"])
        for item in items
    ]
    users = {request.user_id for request in requests}
    price = timeslot.program.price_coupons
    # Locked in user order, so batches of other timeslots that share people
    # wait for each other instead of deadlocking.
    wallets = {
        wallet.user_id: wallet  # type: ignore[attr-defined]
        for wallet in await Wallet.select_for_update().filter(user_id__in=users).order_by(
            "user_id")
    }
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
            price=reservation.price_coupons, starts_at=timeslot.starts_at, now=now
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
