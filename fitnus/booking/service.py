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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.booking import rules
from fitnus.booking.cancelling import CANCELLATION_REFUND_PREFIX
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.booking.outcomes import (
    CANCEL_RESERVATION,
    MOVE_RESERVATION,
    REFUSAL_DETAIL,
    RESERVE_SEAT,
    WITHDRAW_TIMESLOT,
    Decided,
    succeeded,
)
from fitnus.booking.sold_out import SoldOutMemory
from fitnus.booking.starts import TimeslotStarts
from fitnus.centers.models import Timeslot
from fitnus.clock import Clock
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import CommandQueue, Queued, ScheduleDrain, send_to_each
from fitnus.errors import Conflict, NotFound
from fitnus.keyed_queue import KeyedQueue
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient
from fitnus.wallet.models import LedgerEntry

QUEUE_KIND = "timeslot"



class SeatRefused(Conflict):
    """A reservation refused for a reason in booking.rules (the code)."""


# A request accepted into a timeslot's queue: its command id and place in line.
SeatRequested = Queued


@dataclass(frozen=True, kw_only=True)
class BookingDesk:
    """What the web tier needs to accept requests into timeslot queues."""

    redis: RedisClient
    keys: Keys
    pending: PendingCommands
    clock: Clock
    schedule_drain: ScheduleDrain
    starts: TimeslotStarts
    sold_out: SoldOutMemory

    commands: CommandQueue = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "commands", CommandQueue(
            redis=self.redis, keys=self.keys, queue=timeslot_queue(self.redis, self.keys),
            pending=self.pending, clock=self.clock, schedule_drain=self.schedule_drain))

    @property
    def queue(self) -> KeyedQueue:
        return self.commands.queue

    async def is_full(self, timeslot_id: int) -> bool:
        """The fast path, without touching MySQL: a timeslot the worker found full."""
        async def flagged_full() -> bool:
            return bool(await self.redis.exists(self.queue.flag(timeslot_id, "full")))

        return await self.sold_out.is_full(timeslot_id, flagged_full)

    async def start_of(self, timeslot_id: int) -> float:
        """A bookable timeslot's start (POSIX seconds), remembered by this process."""
        starts_at = await self.starts.start_of(timeslot_id)
        if starts_at is None:
            raise NotFound("no such timeslot", code="timeslot_not_found")
        return starts_at

    async def enqueue(self, timeslot_id: int, *, kind: str, user_id: int,
                      **request: Any) -> SeatRequested:
        # The flash crowd's requests stay small: a booking carries no stamp.
        return await self.commands.send(timeslot_id, kind=kind, user_id=user_id,
                                        stamped=kind != RESERVE_SEAT, **request)

    async def first_answer(
        self, principal: Principal, idempotency_key: str | None,
        accept: Callable[[], Awaitable[SeatRequested]],
    ) -> SeatRequested:
        return await self.commands.first_answer(principal, idempotency_key, accept)


def timeslot_queue(redis: RedisClient, keys: Keys) -> KeyedQueue:
    return KeyedQueue(redis=redis, prefix=keys.prefix, kind=QUEUE_KIND)


async def bookable_start(timeslot_id: int) -> float | None:
    """The start (POSIX seconds) of a timeslot still on its center's timetable."""
    timeslot = await Timeslot.get_or_none(id=timeslot_id, withdrawn_at=None,
                                          program__center__deleted_at__isnull=True)
    return None if timeslot is None else timeslot.starts_at.timestamp()


async def request_seat(
    desk: BookingDesk, *, principal: Principal, timeslot_id: int, idempotency_key: str | None,
) -> SeatRequested:
    """Accept a request into the timeslot's queue; the position is its place in line.
    Every copy sent with one Idempotency-Key gets the first copy's answer, and
    only the first is queued."""
    async def accept() -> SeatRequested:
        if await desk.is_full(timeslot_id):
            raise SeatRefused("every seat is taken", code=rules.SOLD_OUT)
        if await desk.start_of(timeslot_id) <= desk.clock.now().timestamp():
            raise SeatRefused("this session has started", code=rules.TIMESLOT_CLOSED)
        return await desk.enqueue(timeslot_id, kind=RESERVE_SEAT, user_id=principal.user_id)

    return await desk.first_answer(principal, idempotency_key, accept)


async def request_cancellation(
    desk: BookingDesk, *, principal: Principal, reservation_id: int,
) -> uuid.UUID | Decided:
    """Queue a cancellation behind the timeslot's other requests, so a freed
    seat goes to the next in line; an already cancelled reservation answers
    at once."""
    reservation = await Reservation.get_or_none(id=reservation_id, user_id=principal.user_id)
    if reservation is None:
        raise NotFound("no such reservation", code="reservation_not_found")
    if reservation.status is ReservationStatus.CANCELLED:
        refund = await LedgerEntry.get_or_none(
            reference=f"{CANCELLATION_REFUND_PREFIX}{reservation.id}")
        result = {"reservation_id": reservation.id,
                  "refunded_coupons": refund.amount if refund else 0,
                  "refund_reason": reservation.refund_reason}
        return Decided(succeeded(str(uuid.uuid4()), principal.user_id, CANCEL_RESERVATION,
                                 result, desk.clock.now()), principal.user_id)
    if reservation.starts_at <= desk.clock.now():
        raise SeatRefused(REFUSAL_DETAIL[rules.ALREADY_STARTED], code=rules.ALREADY_STARTED)
    timeslot_id = reservation.timeslot_id  # type: ignore[attr-defined]
    # Other processes hear of the reopening from the worker; this one may be
    # asked again by the same person the moment the answer reaches them.
    desk.sold_out.forget(timeslot_id)
    requested = await desk.enqueue(timeslot_id, kind=CANCEL_RESERVATION,
                                   user_id=principal.user_id, reservation_id=reservation.id)
    return requested.command_id


async def request_move(
    desk: BookingDesk, *, principal: Principal, reservation_id: int, timeslot_id: int,
    idempotency_key: str | None,
) -> SeatRequested:
    """Queue a move into the new timeslot's queue, which decides it in one
    transaction with freeing the old seat. What is already plain is refused here."""
    async def accept() -> SeatRequested:
        reservation = await Reservation.get_or_none(id=reservation_id,
                                                    user_id=principal.user_id, active=True)
        if reservation is None:
            raise NotFound("no such reservation", code="reservation_not_found")
        if reservation.timeslot_id == timeslot_id:  # type: ignore[attr-defined]
            raise SeatRefused(REFUSAL_DETAIL[rules.ALREADY_RESERVED],
                              code=rules.ALREADY_RESERVED)
        now = desk.clock.now()
        if reservation.starts_at <= now:
            raise SeatRefused(REFUSAL_DETAIL[rules.ALREADY_STARTED], code=rules.ALREADY_STARTED)
        if rules.move_window_closed(reservation.starts_at, now,
                                    reservation.policy_full_refund_hours):
            raise SeatRefused(REFUSAL_DETAIL[rules.MOVE_WINDOW_CLOSED],
                              code=rules.MOVE_WINDOW_CLOSED)
        if await desk.start_of(timeslot_id) <= now.timestamp():
            raise SeatRefused(REFUSAL_DETAIL[rules.TIMESLOT_CLOSED], code=rules.TIMESLOT_CLOSED)
        if await desk.is_full(timeslot_id):
            raise SeatRefused(REFUSAL_DETAIL[rules.SOLD_OUT], code=rules.SOLD_OUT)
        return await desk.enqueue(timeslot_id, kind=MOVE_RESERVATION,
                                  user_id=principal.user_id, reservation_id=reservation.id)

    return await desk.first_answer(principal, idempotency_key, accept)


async def request_withdrawals(
    timeslot_ids: Iterable[int], *, redis: RedisClient, keys: Keys, schedule_drain: ScheduleDrain,
) -> None:
    """After the commit that withdrew them: each timeslot's queue cancels its
    reservations, in line with whatever it holds already."""
    await send_to_each(timeslot_queue(redis, keys), timeslot_ids, kind=WITHDRAW_TIMESLOT,
                       schedule_drain=schedule_drain)


async def withdrawn_with_seats() -> list[int]:
    """Withdrawn timeslots that still hold seats: their withdrawal was never
    queued (the web process died after its commit) or was lost with Redis."""
    return [timeslot.id for timeslot in await Timeslot.filter(
        withdrawn_at__isnull=False, reserved__gt=0).only("id")]


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
