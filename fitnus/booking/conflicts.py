"""One person cannot be in two places at once: their seats at centers and
their places at club meetups are checked for overlaps together. Read inside
a batch that holds these people's wallets, so two batches deciding the same
person run one after the other and the second sees the first."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from fitnus.booking.models import Reservation
from fitnus.clubs.models import MeetupAttendee


async def busy_people(
    user_ids: Collection[int], *, starts_at: datetime, ends_at: datetime,
    except_timeslot: int | None = None, except_reservation: int | None = None,
    except_meetup: int | None = None,
) -> set[int]:
    """Who among ``user_ids`` holds a seat or a meetup place overlapping
    [starts_at, ends_at), leaving out the session or booking being decided."""
    if not user_ids:
        return set()
    seats = Reservation.filter(user_id__in=list(user_ids), active=True,
                               starts_at__lt=ends_at, ends_at__gt=starts_at)
    if except_timeslot is not None:
        seats = seats.exclude(timeslot_id=except_timeslot)
    if except_reservation is not None:
        seats = seats.exclude(id=except_reservation)
    places = MeetupAttendee.filter(user_id__in=list(user_ids), active=True,
                                   starts_at__lt=ends_at, ends_at__gt=starts_at)
    if except_meetup is not None:
        places = places.exclude(meetup_id=except_meetup)
    return ({seat.user_id for seat in await seats}  # type: ignore[attr-defined]
            | {place.user_id for place in await places})  # type: ignore[attr-defined]
