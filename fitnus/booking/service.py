"""Booking a seat: accepted at the web tier into the timeslot's keyed queue,
decided by a worker in batches, each batch in one database transaction that
enforces the invariants itself:

1. seats: ``reserved + n <= capacity`` in the UPDATE that takes them;
2. one live reservation per person per timeslot: a unique key;
3. coupons: a conditional UPDATE of the wallet and a ledger row with a unique
   reference per command;
4. each command decided once: its row is inserted with its outcome, and a
   replayed batch skips commands that have one.

The lease only orders the work; its fencing token is checked by the same
transaction, so a drainer whose lease expired cannot commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.booking import rules
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Timeslot
from fitnus.clock import Clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.pending import PendingCommands
from fitnus.errors import Conflict, NotFound
from fitnus.keyed_queue import KeyedQueue, QueuedItem
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.wallet.models import LedgerKind, Wallet
from fitnus.wallet.service import post_entry

RESERVE_SEAT = "reserve_seat"
QUEUE_KIND = "timeslot"
BATCH_SIZE = 500
LEASE_TTL_MS = 5_000
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

# Sends one drain message for a timeslot (a dramatiq message in production).
ScheduleDrain = Callable[[int], Awaitable[None]]


class SeatRefused(Conflict):
    """A reservation refused for a reason in booking.rules (the code)."""


class StaleLease(Exception):
    """Our lease expired and another drainer committed after us."""


@dataclass(frozen=True)
class SeatRequested:
    command_id: uuid.UUID
    position: int


@dataclass(frozen=True)
class Decided:
    command: Command
    user_id: int


def timeslot_queue(redis: Redis, keys: Keys) -> KeyedQueue:
    return KeyedQueue(redis=redis, prefix=keys.prefix, kind=QUEUE_KIND)


async def request_seat(
    *, principal: Principal, timeslot_id: int, idempotency_key: str | None, redis: Redis,
    keys: Keys, pending: PendingCommands, clock: Clock, schedule_drain: ScheduleDrain,
) -> SeatRequested:
    """Accept a request into the timeslot's queue; the position is its place in line."""
    queue = timeslot_queue(redis, keys)
    if idempotency_key is not None:
        first = await redis.get(keys.idempotency(principal.user_id, idempotency_key))
        if first is not None:
            answer = json.loads(first)
            return SeatRequested(uuid.UUID(answer["command_id"]), answer["position"])
    # Fast path: a timeslot known to be full answers without touching MySQL.
    if await redis.exists(queue.flag(timeslot_id, "full")):
        raise SeatRefused("every seat is taken", code=rules.SOLD_OUT)
    timeslot = await Timeslot.get_or_none(id=timeslot_id, program__center__deleted_at__isnull=True)
    if timeslot is None:
        raise NotFound("no such timeslot", code="timeslot_not_found")
    if timeslot.starts_at <= clock.now():
        raise SeatRefused("this session has started", code=rules.TIMESLOT_CLOSED)
    command_id = uuid.uuid4()
    await pending.open(command_id=command_id, user_id=principal.user_id, kind=RESERVE_SEAT)
    enqueued = await queue.enqueue(
        timeslot_id, {"command_id": str(command_id), "user_id": principal.user_id}
    )
    if idempotency_key is not None:
        answer = json.dumps({"command_id": str(command_id), "position": enqueued.position})
        stored = await redis.set(keys.idempotency(principal.user_id, idempotency_key), answer,
                                 nx=True, ex=IDEMPOTENCY_TTL_SECONDS)
        if not stored:
            # A concurrent request with the same key won; ours stays queued and
            # will be decided on its own (its command id was never shown).
            winner = json.loads(await redis.get(
                keys.idempotency(principal.user_id, idempotency_key)) or answer)
            return SeatRequested(uuid.UUID(winner["command_id"]), winner["position"])
    if enqueued.must_schedule_drain:
        await schedule_drain(timeslot_id)
    return SeatRequested(command_id, enqueued.position)


async def drain_timeslot(
    timeslot_id: int, *, redis: Redis, keys: Keys, clock: Clock,
    published: Callable[[list[Decided]], Awaitable[None]],
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
            while items := await queue.peek(timeslot_id, BATCH_SIZE):
                outcomes, full = await decide_batch(timeslot_id, items, token=token, clock=clock)
                if full:
                    await redis.set(queue.flag(timeslot_id, "full"), "1")
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


async def decide_batch(
    timeslot_id: int, items: Sequence[QueuedItem], *, token: int, clock: Clock
) -> tuple[list[Decided], bool]:
    """One transaction for the whole batch; returns the outcomes and whether
    the timeslot is now full."""
    now = clock.now()
    async with in_transaction():
        timeslot = await Timeslot.select_for_update().get(id=timeslot_id).prefetch_related(
            "program"
        )
        fenced = await Timeslot.filter(id=timeslot_id, drain_fence__lte=token).update(
            drain_fence=token
        )
        if fenced != 1:
            raise StaleLease(timeslot_id)
        requests = [
            rules.SeatRequest(item.position, item.payload["command_id"], item.payload["user_id"])
            for item in items
        ]
        seen = {
            str(command_id) for command_id in await Command.filter(
                id__in=[request.command_id for request in requests]
            ).values_list("id", flat=True)
        }
        fresh = [request for request in requests if request.command_id not in seen]
        if not fresh:
            return [], timeslot.reserved >= timeslot.capacity
        users = {request.user_id for request in fresh}
        price = timeslot.program.price_coupons
        decisions = rules.decide_seats(
            fresh,
            seats_left=timeslot.capacity - timeslot.reserved,
            price=price,
            # Locked in user order, so batches of other timeslots that share
            # people wait for each other instead of deadlocking.
            available={
                wallet.user_id: wallet.balance - wallet.held  # type: ignore[attr-defined]
                for wallet in await Wallet.select_for_update().filter(
                    user_id__in=users
                ).order_by("user_id")
            },
            holders={
                reservation.user_id  # type: ignore[attr-defined]
                for reservation in await Reservation.filter(
                    timeslot_id=timeslot_id, user_id__in=users, active=True
                )
            },
            conflicting={
                reservation.user_id  # type: ignore[attr-defined]
                for reservation in await Reservation.filter(
                    user_id__in=users, active=True, starts_at__lt=timeslot.ends_at,
                    ends_at__gt=timeslot.starts_at,
                ).exclude(timeslot_id=timeslot_id)
            },
            is_open=timeslot.starts_at > now,
        )
        outcomes = await _apply(timeslot, decisions, price=price, now=now)
        seated = sum(1 for decision in decisions if decision.confirmed)
        if seated:
            taken = await Timeslot.filter(
                id=timeslot_id, reserved__lte=timeslot.capacity - seated
            ).update(reserved=F("reserved") + seated)
            if taken != 1:
                raise RuntimeError(f"timeslot {timeslot_id} would exceed its capacity")
        return outcomes, timeslot.reserved + seated >= timeslot.capacity


async def _apply(
    timeslot: Timeslot, decisions: list[rules.SeatDecision], *, price: int, now: datetime
) -> list[Decided]:
    commands: list[Command] = []
    notifications: list[Notification] = []
    outcomes: list[Decided] = []
    center_id = timeslot.program.center_id  # type: ignore[attr-defined]
    for decision in decisions:
        request = decision.request
        if decision.confirmed:
            await post_entry(
                user_id=request.user_id, kind=LedgerKind.BOOKING_DEBIT, amount=-price,
                reference=f"reservation:{request.command_id}", now=now, center_id=center_id,
            )
            reservation = await Reservation.create(
                user_id=request.user_id, timeslot_id=timeslot.id,
                status=ReservationStatus.CONFIRMED, active=True, price_coupons=price,
                starts_at=timeslot.starts_at, ends_at=timeslot.ends_at,
                command_id=request.command_id, created_at=now,
            )
            command = Command(
                id=uuid.UUID(request.command_id), user_id=request.user_id, kind=RESERVE_SEAT,
                status=CommandStatus.SUCCEEDED, result={"reservation_id": reservation.id},
                created_at=now, decided_at=now,
            )
            event = "reservation.confirmed"
            payload = {"reservation_id": reservation.id, "timeslot_id": timeslot.id,
                       "command_id": request.command_id}
        else:
            command = Command(
                id=uuid.UUID(request.command_id), user_id=request.user_id, kind=RESERVE_SEAT,
                status=CommandStatus.FAILED,
                error={"code": decision.outcome, "detail": REFUSAL_DETAIL[decision.outcome]},
                created_at=now, decided_at=now,
            )
            event = "reservation.rejected"
            payload = {"timeslot_id": timeslot.id, "command_id": request.command_id,
                       "code": decision.outcome}
        commands.append(command)
        notifications.append(Notification(
            user_id=request.user_id, type=event, payload=payload,
            dedupe_key=f"reservation:{request.command_id}", created_at=now,
        ))
        outcomes.append(Decided(command, request.user_id))
    await Command.bulk_create(commands)
    await Notification.bulk_create(notifications)
    return outcomes


REFUSAL_DETAIL = {
    rules.SOLD_OUT: "every seat is taken",
    rules.INSUFFICIENT_COUPONS: "not enough coupons for this session",
    rules.ALREADY_RESERVED: "you already hold a seat in this session",
    rules.SCHEDULE_CONFLICT: "you hold another session at that time",
    rules.TIMESLOT_CLOSED: "this session has started",
}


async def reservation_for(principal: Principal, reservation_id: int) -> Reservation:
    """Its user, the center's owner, or an admin; anyone else gets the same 404
    as for no reservation."""
    reservation = await Reservation.get_or_none(id=reservation_id).prefetch_related(
        "timeslot__program__center"
    )
    if reservation is None:
        raise NotFound("no such reservation", code="reservation_not_found")
    owner_id = reservation.timeslot.program.center.owner_id  # type: ignore[attr-defined]
    if principal.role is Role.ADMIN or principal.user_id in (
        reservation.user_id, owner_id  # type: ignore[attr-defined]
    ):
        return reservation
    raise NotFound("no such reservation", code="reservation_not_found")
