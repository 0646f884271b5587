"""A timeslot as its waitlist sees it (fitnus.waitlist.offers.WaitedFor):
seats offered are kept out of booking until claimed or the offer ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fitnus.booking.guards import change_seat_count
from fitnus.booking.models import seat_paid_for
from fitnus.booking.seating import new_reservation, open_for_booking
from fitnus.centers.models import Timeslot
from fitnus.waitlist.offers import keep_offered


@dataclass
class TimeslotSeats:
    """Inside the timeslot's batch, which holds its row (program and center fetched)."""

    timeslot: Timeslot
    column = "timeslot_id"
    seated_event = "reservation.confirmed"

    @property
    def id(self) -> int:
        timeslot_id: int = self.timeslot.id
        return timeslot_id

    @property
    def price(self) -> int:
        return self.timeslot.program.price_coupons

    @property
    def starts_at(self) -> datetime:
        return self.timeslot.starts_at

    @property
    def ends_at(self) -> datetime:
        return self.timeslot.ends_at

    @property
    def center_id(self) -> int | None:
        return self.timeslot.program.center_id  # type: ignore[attr-defined,no-any-return]

    @property
    def full_refund_hours(self) -> int:
        return self.timeslot.program.center.cancellation_policy.full_refund_hours

    @property
    def offered(self) -> int:
        return self.timeslot.offered

    def free(self) -> int:
        return self.timeslot.capacity - self.timeslot.reserved - self.timeslot.offered

    def is_open(self, now: datetime) -> bool:
        return open_for_booking(self.timeslot, now=now)

    async def admits(self, user_id: int) -> bool:
        return True

    async def change_offered(self, change: int) -> None:
        await keep_offered(Timeslot, self.timeslot, change, taken="reserved")

    async def seat(self, user_id: int, *, command_id: str, now: datetime,
                   from_offer: bool) -> int:
        if from_offer:
            await self.change_offered(-1)
        await change_seat_count(self.timeslot, 1)
        reservation = new_reservation(self.timeslot, user_id, command_id,
                                      price=self.price, now=now)
        await reservation.save()
        reservation_id: int = reservation.id
        return reservation_id

    def seat_result(self, seat_id: int) -> dict[str, Any]:
        return {"reservation_id": seat_id}

    def paid_for(self, command_id: str) -> str:
        return seat_paid_for(command_id)
