"""Who gets a seat, decided for a batch in queue order. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

CONFIRMED = "confirmed"
SOLD_OUT = "sold_out"
INSUFFICIENT_COUPONS = "insufficient_coupons"
ALREADY_RESERVED = "already_reserved"
SCHEDULE_CONFLICT = "schedule_conflict"
TIMESLOT_CLOSED = "timeslot_closed"
ALREADY_STARTED = "already_started"
NOT_RESERVED = "reservation_not_found"
REFUND_WINDOW_HOURS = 24


@dataclass(frozen=True)
class SeatRequest:
    position: int
    command_id: str
    user_id: int


@dataclass(frozen=True)
class SeatDecision:
    request: SeatRequest
    outcome: str

    @property
    def confirmed(self) -> bool:
        return self.outcome == CONFIRMED


def decide_seats(
    requests: Iterable[SeatRequest],
    *,
    seats_left: int,
    price: int,
    available: dict[int, int],
    holders: set[int],
    conflicting: set[int],
    is_open: bool,
) -> list[SeatDecision]:
    """First come, first served: in position order, each request gets a seat
    if the session is open, the person holds none here and no overlapping one
    elsewhere, a seat is left, and they can pay."""
    left = seats_left
    coupons = dict(available)
    seated = set(holders)
    decisions = []
    for request in sorted(requests, key=lambda request: request.position):
        if not is_open:
            outcome = TIMESLOT_CLOSED
        elif request.user_id in seated:
            outcome = ALREADY_RESERVED
        elif request.user_id in conflicting:
            outcome = SCHEDULE_CONFLICT
        elif left <= 0:
            outcome = SOLD_OUT
        elif coupons.get(request.user_id, 0) < price:
            outcome = INSUFFICIENT_COUPONS
        else:
            outcome = CONFIRMED
            left -= 1
            coupons[request.user_id] -= price
            seated.add(request.user_id)
        decisions.append(SeatDecision(request, outcome))
    return decisions


def refund_for_cancellation(*, price: int, starts_at: datetime, now: datetime) -> int | None:
    """Coupons back when cancelling: all of them 24 h or more before the start,
    none later, and no cancelling at all once it started (None)."""
    if now >= starts_at:
        return None
    return price if starts_at - now >= timedelta(hours=REFUND_WINDOW_HOURS) else 0
