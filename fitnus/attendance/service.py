"""Who came: check-in at the door with the kiosk's rotating code, no-shows
marked after the session, attendance for the center's owner. Settlement pays
centers for attended and no-show seats, so each seat ends in exactly one of
these states: each change is a conditional UPDATE from ``confirmed``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fitnus.accounts.tokens import Principal
from fitnus.attendance import totp
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Center, Timeslot
from fitnus.centers.service import managed_center
from fitnus.clock import Clock, as_utc
from fitnus.errors import Conflict, InvalidInput, NotFound

# Check-in opens this long before the start and closes this long after it.
CHECK_IN_WINDOW = timedelta(minutes=30)
# A confirmed seat not checked into this long after the session ended is a no-show.
NO_SHOW_AFTER = timedelta(minutes=30)
NO_SHOW_PAGE = 1000


class CheckInClosed(Conflict):
    code = "check_in_closed"


class AlreadyCheckedIn(Conflict):
    code = "already_checked_in"


class InvalidCode(InvalidInput):
    code = "invalid_code"


@dataclass(frozen=True)
class CheckInCode:
    code: str
    valid_for_seconds: int


@dataclass(frozen=True)
class Attendee:
    reservation_id: int
    user_name: str
    status: ReservationStatus


async def _secret_of(center: Center) -> str:
    """Made on first use; two first uses at once keep the one that landed."""
    if center.check_in_secret is None:
        await Center.filter(id=center.id, check_in_secret=None).update(
            check_in_secret=totp.new_secret())
        await center.refresh_from_db(fields=["check_in_secret"])
    assert center.check_in_secret is not None
    return center.check_in_secret


async def check_in_code(*, principal: Principal, center_id: int, clock: Clock) -> CheckInCode:
    """What the kiosk shows now; its owner's (or an admin's) to read."""
    center = await managed_center(principal, center_id)
    code, left = totp.current_code(await _secret_of(center), clock.now())
    return CheckInCode(code, left)


async def check_in(
    *, principal: Principal, reservation_id: int, code: str, clock: Clock
) -> Reservation:
    reservation = await Reservation.get_or_none(
        id=reservation_id, user_id=principal.user_id, active=True
    ).select_related("timeslot__program__center")
    if reservation is None:
        raise NotFound("no such reservation", code="reservation_not_found")
    if reservation.status is ReservationStatus.ATTENDED:
        raise AlreadyCheckedIn("you have checked in already")
    now = clock.now()
    if not _open_for_check_in(reservation.timeslot, now=now):
        raise CheckInClosed("check-in is open from 30 minutes before the start to 30 after")
    secret = reservation.timeslot.program.center.check_in_secret
    if secret is None or not totp.matches(secret, code, now):
        raise InvalidCode("this is not the code the center shows now")
    checked = await Reservation.filter(id=reservation.id, status=ReservationStatus.CONFIRMED,
                                       active=True).update(
        status=ReservationStatus.ATTENDED, checked_in_at=now)
    if checked != 1:
        raise AlreadyCheckedIn("you have checked in already")
    await reservation.refresh_from_db(fields=["status", "checked_in_at"])
    return reservation


def _open_for_check_in(timeslot: Timeslot, *, now: datetime) -> bool:
    return (timeslot.withdrawn_at is None and timeslot.program.center.deleted_at is None
            and timeslot.starts_at - CHECK_IN_WINDOW <= now <= timeslot.starts_at
            + CHECK_IN_WINDOW)


async def mark_no_shows(*, clock: Clock) -> int:
    """Every confirmed seat of a session that ended NO_SHOW_AFTER ago; how many.
    Repeating it marks nothing twice."""
    cutoff = as_utc(clock.now() - NO_SHOW_AFTER)
    marked = 0
    while ids := list(await Reservation.filter(
            status=ReservationStatus.CONFIRMED, ends_at__lte=cutoff, active=True,
    ).limit(NO_SHOW_PAGE).values_list("id", flat=True)):
        marked += await Reservation.filter(id__in=ids, status=ReservationStatus.CONFIRMED).update(
            status=ReservationStatus.NO_SHOW)
    return marked


async def attendance_of(*, principal: Principal, timeslot_id: int) -> list[Attendee]:
    """Every booking of the session and where it stands, for its center's owner."""
    timeslot = await Timeslot.get_or_none(id=timeslot_id).select_related("program")
    if timeslot is None:
        raise NotFound("no such timeslot", code="timeslot_not_found")
    await managed_center(principal, timeslot.program.center_id)  # type: ignore[attr-defined]
    return [
        Attendee(reservation.id, reservation.user.name, reservation.status)
        for reservation in await Reservation.filter(timeslot_id=timeslot.id)
        .select_related("user").order_by("id")
    ]
