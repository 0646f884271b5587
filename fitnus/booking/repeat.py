"""Repeat my month: each confirmed booking of one month asked for again, as an
ordinary reservation, in the same program's session on the same weekday and
time of day of the corresponding week of another month. Each goes through
its timeslot's queue like any booking, so seats, conflicts and coupons decide
each one on its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fitnus.accounts.tokens import Principal
from fitnus.booking import rules
from fitnus.booking.models import Reservation
from fitnus.booking.rules import Month
from fitnus.booking.service import BookingDesk, SeatRefused, request_seat
from fitnus.centers.models import Timeslot
from fitnus.clock import as_utc
from fitnus.errors import InvalidInput, NotFound

NO_MATCHING_WEEK = "no_matching_week"
NO_MATCHING_TIMESLOT = "no_matching_timeslot"


@dataclass(frozen=True)
class Repeated:
    source_reservation_id: int
    timeslot_id: int | None = None
    command_id: uuid.UUID | None = None
    reason: str | None = None


async def repeat_month(
    desk: BookingDesk, *, principal: Principal, from_month: Month, to_month: Month,
    zone: ZoneInfo, idempotency_key: str | None,
) -> list[Repeated]:
    """One answer per confirmed booking of ``from_month``, in start order: the
    command that asks for its repeat, or why there is none. An Idempotency-Key
    stands for every command the call sends."""
    if from_month == to_month:
        raise InvalidInput("a month repeats into another month", code="same_month")
    sources = await Reservation.filter(
        user_id=principal.user_id, active=True,
        starts_at__gte=as_utc(from_month.first_moment(zone)),
        starts_at__lt=as_utc(from_month.next().first_moment(zone)),
    ).select_related("timeslot").order_by("starts_at", "id")
    return [
        await _repeat(desk, principal, source, to_month=to_month, zone=zone,
                      idempotency_key=idempotency_key)
        for source in sources
    ]


async def _repeat(
    desk: BookingDesk, principal: Principal, source: Reservation, *, to_month: Month,
    zone: ZoneInfo, idempotency_key: str | None,
) -> Repeated:
    starts_at = rules.repeated_start(source.starts_at.astimezone(zone), year=to_month.year,
                                     month=to_month.month)
    if starts_at is None:
        return Repeated(source.id, reason=NO_MATCHING_WEEK)
    # A program of parallel sessions may hold several at that time: one with
    # a seat left, if any (the queue decides whether it is still left).
    same_time = await Timeslot.filter(
        program_id=source.timeslot.program_id,  # type: ignore[attr-defined]
        starts_at=as_utc(starts_at), withdrawn_at=None,
    ).order_by("id")
    timeslot = next((slot for slot in same_time if slot.reserved + slot.offered < slot.capacity),
                    same_time[0] if same_time else None)
    if timeslot is None:
        return Repeated(source.id, reason=NO_MATCHING_TIMESLOT)
    try:
        requested = await request_seat(
            desk, principal=principal, timeslot_id=timeslot.id,
            idempotency_key=None if idempotency_key is None
            else f"{idempotency_key}:repeat:{source.id}",
        )
    except SeatRefused as refused:
        return Repeated(source.id, timeslot.id, reason=refused.code)
    except NotFound:  # its center closed
        return Repeated(source.id, reason=NO_MATCHING_TIMESLOT)
    return Repeated(source.id, timeslot.id, requested.command_id)
