"""Booking a seat: requests accepted at the web tier into the timeslot's keyed
queue, decided by a worker in batches (fitnus.booking.batches), each batch in
one database transaction that enforces the invariants itself:

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

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.booking import rules
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.booking.outcomes import (
    CANCEL_RESERVATION,
    REFUSAL_DETAIL,
    RESERVE_SEAT,
    Decided,
    succeeded,
)
from fitnus.booking.sold_out import SoldOutMemory
from fitnus.booking.starts import TimeslotStarts
from fitnus.centers.models import Timeslot
from fitnus.clock import Clock
from fitnus.commands.idempotency import IdempotencyKeys
from fitnus.commands.pending import PendingCommands
from fitnus.errors import Conflict, NotFound
from fitnus.keyed_queue import KeyedQueue
from fitnus.keys import Keys
from fitnus.wallet.models import LedgerEntry

QUEUE_KIND = "timeslot"

# Sends one drain message for a timeslot (a dramatiq message in production).
ScheduleDrain = Callable[[int], Awaitable[None]]


class SeatRefused(Conflict):
    """A reservation refused for a reason in booking.rules (the code)."""


@dataclass(frozen=True)
class SeatRequested:
    command_id: uuid.UUID
    position: int


def timeslot_queue(redis: Redis, keys: Keys) -> KeyedQueue:
    return KeyedQueue(redis=redis, prefix=keys.prefix, kind=QUEUE_KIND)


async def bookable_start(timeslot_id: int) -> float | None:
    """The start (POSIX seconds) of a timeslot whose center is not deleted."""
    timeslot = await Timeslot.get_or_none(id=timeslot_id, program__center__deleted_at__isnull=True)
    return None if timeslot is None else timeslot.starts_at.timestamp()


async def request_seat(
    *, principal: Principal, timeslot_id: int, idempotency_key: str | None, redis: Redis,
    keys: Keys, pending: PendingCommands, clock: Clock, schedule_drain: ScheduleDrain,
    starts: TimeslotStarts, sold_out: SoldOutMemory,
) -> SeatRequested:
    """Accept a request into the timeslot's queue; the position is its place in line.
    Every copy sent with one Idempotency-Key gets the first copy's answer, and
    only the first is queued."""
    async def accept() -> dict[str, Any]:
        requested = await _accept_seat_request(
            principal=principal, timeslot_id=timeslot_id, redis=redis, keys=keys,
            pending=pending, clock=clock, schedule_drain=schedule_drain, starts=starts,
            sold_out=sold_out,
        )
        return {"command_id": str(requested.command_id), "position": requested.position}

    if idempotency_key is None:
        answer = await accept()
    else:
        answer = await IdempotencyKeys(redis=redis, keys=keys).first_answer(
            user_id=principal.user_id, key=idempotency_key, answer=accept)
    return SeatRequested(uuid.UUID(answer["command_id"]), answer["position"])


async def _accept_seat_request(
    *, principal: Principal, timeslot_id: int, redis: Redis, keys: Keys,
    pending: PendingCommands, clock: Clock, schedule_drain: ScheduleDrain,
    starts: TimeslotStarts, sold_out: SoldOutMemory,
) -> SeatRequested:
    queue = timeslot_queue(redis, keys)

    # Fast paths, without touching MySQL: a timeslot the worker found full,
    # and the start of one this process has seen.
    async def flagged_full() -> bool:
        return bool(await redis.exists(queue.flag(timeslot_id, "full")))

    if await sold_out.is_full(timeslot_id, flagged_full):
        raise SeatRefused("every seat is taken", code=rules.SOLD_OUT)
    starts_at = await starts.start_of(timeslot_id)
    if starts_at is None:
        raise NotFound("no such timeslot", code="timeslot_not_found")
    if starts_at <= clock.now().timestamp():
        raise SeatRefused("this session has started", code=rules.TIMESLOT_CLOSED)
    command_id = uuid.uuid4()
    enqueued = await queue.enqueue(
        timeslot_id, {"command_id": str(command_id), "user_id": principal.user_id},
        along=lambda pipe: pending.open(pipe, command_id=command_id, user_id=principal.user_id,
                                        kind=RESERVE_SEAT),
    )
    if enqueued.must_schedule_drain:
        await schedule_drain(timeslot_id)
    return SeatRequested(command_id, enqueued.position)


async def request_cancellation(
    *, principal: Principal, reservation_id: int, redis: Redis, keys: Keys,
    pending: PendingCommands, clock: Clock, schedule_drain: ScheduleDrain,
    sold_out: SoldOutMemory,
) -> uuid.UUID | Decided:
    """Queue a cancellation behind the timeslot's other requests, so a freed
    seat goes to the next in line; an already cancelled reservation answers
    at once."""
    reservation = await Reservation.get_or_none(id=reservation_id, user_id=principal.user_id)
    if reservation is None:
        raise NotFound("no such reservation", code="reservation_not_found")
    if reservation.status is ReservationStatus.CANCELLED:
        refund = await LedgerEntry.get_or_none(reference=f"cancellation:{reservation.id}")
        result = {"reservation_id": reservation.id,
                  "refunded_coupons": refund.amount if refund else 0}
        return Decided(succeeded(str(uuid.uuid4()), principal.user_id, CANCEL_RESERVATION,
                                  result, clock.now()), principal.user_id)
    if reservation.starts_at <= clock.now():
        raise SeatRefused(REFUSAL_DETAIL[rules.ALREADY_STARTED], code=rules.ALREADY_STARTED)
    command_id = uuid.uuid4()
    timeslot_id = reservation.timeslot_id  # type: ignore[attr-defined]
    # Other processes hear of the reopening from the worker; this one may be
    # asked again by the same person the moment the answer reaches them.
    sold_out.forget(timeslot_id)
    enqueued = await timeslot_queue(redis, keys).enqueue(
        timeslot_id,
        {"kind": CANCEL_RESERVATION, "command_id": str(command_id),
         "user_id": principal.user_id, "reservation_id": reservation.id,
         "accepted_at": clock.now().timestamp()},
        along=lambda pipe: pending.open(pipe, command_id=command_id, user_id=principal.user_id,
                                        kind=CANCEL_RESERVATION),
    )
    if enqueued.must_schedule_drain:
        await schedule_drain(timeslot_id)
    return command_id


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
