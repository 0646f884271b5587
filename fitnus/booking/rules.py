"""Who gets a seat, decided for a batch in queue order. Pure: no I/O."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fitnus.errors import FieldError, InvalidInput

CONFIRMED = "confirmed"
SOLD_OUT = "sold_out"
INSUFFICIENT_COUPONS = "insufficient_coupons"
ALREADY_RESERVED = "already_reserved"
SCHEDULE_CONFLICT = "schedule_conflict"
TIMESLOT_CLOSED = "timeslot_closed"
ALREADY_STARTED = "already_started"
NOT_RESERVED = "reservation_not_found"
MOVE_WINDOW_CLOSED = "move_window_closed"
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


def accepted_at(request: Mapping[str, Any], *, default: datetime) -> datetime:
    """When the web tier accepted a queued request: the moment the refund and
    move windows count from, however long the queue kept it. A request
    queued by a web process older than the stamp counts from ``default``."""
    stamp = request.get("accepted_at")
    return default if stamp is None else datetime.fromtimestamp(stamp, UTC)


@dataclass(frozen=True)
class Month:
    """A calendar month in the service time zone."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def first_moment(self, zone: ZoneInfo) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=zone)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)


POLICY_FULL = "policy_full"
POLICY_PARTIAL = "policy_partial"
LATE_NO_REFUND = "late_no_refund"
FIRST_LATE_CANCEL_FREE = "first_late_cancel_free"
CENTER_CLOSED = "center_closed"
# The longest notice a center may ask for a full refund.
MAX_POLICY_HOURS = 30 * 24


@dataclass(frozen=True)
class CancellationPolicy:
    """How late a cancellation still earns coupons back, set by each center.
    A booking keeps the policy in force when it was made."""

    full_refund_hours: int = REFUND_WINDOW_HOURS
    partial_refund_hours: int | None = None
    partial_refund_percent: int | None = None

    def check(self) -> None:
        """Raise InvalidInput (invalid_policy) with every problem, if any."""
        problems = self.problems()
        if problems:
            raise InvalidInput(problems[0], code="invalid_policy",
                               errors=[FieldError(field="body", message=problem)
                                       for problem in problems])

    def problems(self) -> list[str]:
        """Why the policy cannot be set; empty if it can."""
        partial = (self.partial_refund_hours, self.partial_refund_percent)
        if not 0 <= self.full_refund_hours <= MAX_POLICY_HOURS:
            return [f"full_refund_hours is 0 to {MAX_POLICY_HOURS}"]
        if partial.count(None) == 1:
            return ["partial_refund_hours and partial_refund_percent come together"]
        if self.partial_refund_hours is not None and not (
                0 <= self.partial_refund_hours < self.full_refund_hours):
            return ["partial_refund_hours is from 0 to under full_refund_hours"]
        if self.partial_refund_percent is not None and not (
                1 <= self.partial_refund_percent <= 99):
            return ["partial_refund_percent is 1 to 99"]
        return []


class HasPolicySnapshot:
    """For a booking (a reservation, a meetup place) that keeps the policy in
    force when it was made: its three ``policy_*`` columns as one policy."""

    policy_full_refund_hours: int
    policy_partial_refund_hours: int | None
    policy_partial_refund_percent: int | None

    @property
    def cancellation_policy(self) -> CancellationPolicy:
        return CancellationPolicy(self.policy_full_refund_hours,
                                  self.policy_partial_refund_hours,
                                  self.policy_partial_refund_percent)


def policy_snapshot(policy: CancellationPolicy) -> dict[str, int | None]:
    """The ``policy_*`` columns of a booking made under ``policy``."""
    return {"policy_full_refund_hours": policy.full_refund_hours,
            "policy_partial_refund_hours": policy.partial_refund_hours,
            "policy_partial_refund_percent": policy.partial_refund_percent}


class HasCancellationPolicy:
    """For a model that sets a policy for what is booked from now on (a
    center, a club): its three ``cancel_*`` columns as one policy."""

    cancel_full_refund_hours: int
    cancel_partial_refund_hours: int | None
    cancel_partial_refund_percent: int | None

    @property
    def cancellation_policy(self) -> CancellationPolicy:
        return CancellationPolicy(self.cancel_full_refund_hours, self.cancel_partial_refund_hours,
                                  self.cancel_partial_refund_percent)


@dataclass(frozen=True)
class Refund:
    coupons: int
    reason: str


def refund_for_cancellation(
    *, price: int, starts_at: datetime, now: datetime,
    policy: CancellationPolicy = CancellationPolicy(), late_cancel_used: bool = False,
) -> Refund | None:
    """Coupons back when cancelling at ``now``: all of them with the policy's
    full notice, the partial percentage (rounded down) with its shorter
    notice, none later, except that a person's first late cancellation of a
    calendar month is refunded in full anyway (``late_cancel_used`` says
    whether they had it). None once the session has started: no cancelling."""
    if now >= starts_at:
        return None
    notice = starts_at - now
    if notice >= timedelta(hours=policy.full_refund_hours):
        return Refund(price, POLICY_FULL)
    if (policy.partial_refund_hours is not None and policy.partial_refund_percent is not None
            and notice >= timedelta(hours=policy.partial_refund_hours)):
        return Refund(price * policy.partial_refund_percent // 100, POLICY_PARTIAL)
    if not late_cancel_used and price > 0:  # a free session's does not use it up
        return Refund(price, FIRST_LATE_CANCEL_FREE)
    return Refund(0, LATE_NO_REFUND)


@dataclass(frozen=True)
class MoveFacts:
    """What the batch read, under its locks, about one move."""

    old_starts_at: datetime | None  # None: the reservation is not live any more
    accepted_at: datetime
    target_open: bool
    holds_target: bool
    conflicting: bool
    seats_left: int
    available: int
    price_difference: int  # new price - what the old seat cost
    # The booking's own policy: it moves while a cancellation would still be
    # refunded in full, so a move is no way around a longer notice.
    full_refund_hours: int = REFUND_WINDOW_HOURS


def move_window_closed(starts_at: datetime, at: datetime, full_refund_hours: int) -> bool:
    return starts_at - at < timedelta(hours=full_refund_hours)


def decide_move(facts: MoveFacts) -> str:
    """Either the person gets the new seat and gives up the old one, or nothing
    changes; counted from when the request was accepted."""
    if facts.old_starts_at is None:
        return NOT_RESERVED
    if facts.accepted_at >= facts.old_starts_at:
        return ALREADY_STARTED
    if move_window_closed(facts.old_starts_at, facts.accepted_at, facts.full_refund_hours):
        return MOVE_WINDOW_CLOSED
    if not facts.target_open:
        return TIMESLOT_CLOSED
    if facts.holds_target:
        return ALREADY_RESERVED
    if facts.conflicting:
        return SCHEDULE_CONFLICT
    if facts.seats_left <= 0:
        return SOLD_OUT
    if facts.price_difference > facts.available:
        return INSUFFICIENT_COUPONS
    return CONFIRMED


def repeated_start(start: datetime, *, year: int, month: int) -> datetime | None:
    """Where a session repeats in another month: the same weekday and local
    time of day in the corresponding week, counted as the n-th such weekday
    of the month (the 2nd Tuesday stays the 2nd Tuesday). None when that month
    has no n-th one (a 5th Monday). ``start`` is local, in the service zone."""
    nth = (start.day - 1) // 7
    first = date(year, month, 1)
    day = 1 + (start.weekday() - first.weekday()) % 7 + 7 * nth
    if day > calendar.monthrange(year, month)[1]:
        return None
    return start.replace(year=year, month=month, day=day)
