"""The conditional UPDATEs every batch run changes seats through: the
database, not the rule that decided, has the last word."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from tortoise.expressions import F
from tortoise.models import Model

from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Timeslot
from fitnus.keyed_queue import StaleLease


async def change_seat_count(timeslot: Timeslot, change: int) -> None:
    """Seats taken (+) or given back (-), never past capacity (less the seats
    kept for waitlist offers) nor below zero."""
    moved = await Timeslot.filter(
        id=timeslot.id, reserved__lte=F("capacity") - (F("offered") + change),
        reserved__gte=-change,
    ).update(reserved=F("reserved") + change)
    if moved != 1:
        raise RuntimeError(f"timeslot {timeslot.id}: {change:+} seats breaks its bounds")
    timeslot.reserved += change


async def free_seat(reservation: Reservation, *, now: datetime,
                    refund_reason: str | None = None) -> bool:
    """Cancel a reservation if it is still live; whether it was. The condition
    is the guard: a seat is freed once, whoever gets there first, even if a
    lock was lost on the way."""
    freed = await Reservation.filter(id=reservation.id, active=True).update(
        status=ReservationStatus.CANCELLED, active=None, cancelled_at=now,
        refund_reason=refund_reason)
    return freed == 1


class Fenced(Protocol):
    id: int
    drain_fence: int


async def advance_fence(model: type[Model], row: Fenced, token: int) -> None:
    """On the row the batch locked: a drainer holding an older fencing token
    than the last commit's lost its lease and must not commit. Compared on the
    locked row, not by an UPDATE's row count: MySQL counts changed rows, and the
    same holder's next batch changes nothing."""
    if row.drain_fence > token:
        raise StaleLease(row.id, row.drain_fence)
    if row.drain_fence < token:
        await model.filter(id=row.id).update(drain_fence=token)
