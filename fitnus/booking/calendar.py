"""A person's calendar: the seats they hold and the club meetups they joined."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from tortoise.expressions import Q

from fitnus.booking.models import CalendarFeed, Reservation
from fitnus.clock import as_utc
from fitnus.clubs.models import MeetupAttendee
from fitnus.errors import InvalidInput, NotAuthenticated

MAX_RANGE_DAYS = 366
FEED_TOKEN_BYTES = 32
FEED_PAST_DAYS = 30
FEED_FUTURE_DAYS = 180


@dataclass(frozen=True, kw_only=True)
class CalendarItem:
    kind: str
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    timeslot_id: int | None = None
    center_id: int | None = None
    club_id: int | None = None


async def reservations_between(
    user_id: int, *, starts_from: datetime, starts_before: datetime,
    include_cancelled: bool = False, after: tuple[datetime, int] | None = None,
    limit: int | None = None,
) -> list[Reservation]:
    """One query over the (user_id, starts_at) index, centers joined in, by
    (start, id); a page is the ``limit`` after the (start, id) ``after``."""
    if starts_before <= starts_from:
        raise InvalidInput("'to' must be after 'from'", code="invalid_range")
    if starts_before - starts_from > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidInput(f"a range spans at most {MAX_RANGE_DAYS} days", code="invalid_range")
    query = Reservation.filter(
        user_id=user_id, starts_at__gte=as_utc(starts_from), starts_at__lt=as_utc(starts_before)
    )
    if not include_cancelled:
        query = query.filter(active=True)  # confirmed, attended or missed: a seat held
    if after is not None:
        after_start, after_id = as_utc(after[0]), after[1]
        query = query.filter(Q(starts_at__gt=after_start) | Q(starts_at=after_start,
                                                               id__gt=after_id))
    query = query.select_related("timeslot__program__center").order_by("starts_at", "id")
    return await (query if limit is None else query.limit(limit))


def calendar_items(reservations: list[Reservation]) -> list[CalendarItem]:
    return [
        CalendarItem(
            kind="reservation", id=reservation.id,
            title=f"{reservation.timeslot.program.name} · "
                  f"{reservation.timeslot.program.center.name}",
            starts_at=reservation.starts_at, ends_at=reservation.ends_at,
            location=reservation.timeslot.program.center.address,
            timeslot_id=reservation.timeslot.id, center_id=reservation.timeslot.program.center.id,
        )
        for reservation in reservations
    ]


async def calendar_between(
    user_id: int, *, starts_from: datetime, starts_before: datetime
) -> list[CalendarItem]:
    """Seats held and meetups joined, by start: two index ranges by person."""
    places = await MeetupAttendee.filter(
        user_id=user_id, active=True, starts_at__gte=as_utc(starts_from),
        starts_at__lt=as_utc(starts_before),
    ).select_related("meetup__club")
    meetups = [
        CalendarItem(kind="club_event", id=place.meetup.id,
                     title=f"{place.meetup.title} · {place.meetup.club.name}",
                     starts_at=place.starts_at, ends_at=place.ends_at,
                     location=place.meetup.place, club_id=place.meetup.club.id)
        for place in places
    ]
    seats = calendar_items(await reservations_between(
        user_id, starts_from=starts_from, starts_before=starts_before))
    return sorted(seats + meetups, key=lambda item: (item.starts_at, item.kind, item.id))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def rotate_feed_token(*, user_id: int, now: datetime) -> str:
    """A new secret feed token; the previous one stops working."""
    token = secrets.token_urlsafe(FEED_TOKEN_BYTES)
    await CalendarFeed.update_or_create(
        user_id=user_id, defaults={"token_hash": _digest(token), "created_at": now}
    )
    return token


async def revoke_feed_token(*, user_id: int) -> None:
    await CalendarFeed.filter(user_id=user_id).delete()


async def feed_owner(token: str) -> int:
    feed = await CalendarFeed.get_or_none(token_hash=_digest(token))
    if feed is None:
        raise NotAuthenticated("unknown or revoked calendar feed", code="invalid_feed_token")
    return feed.user_id  # type: ignore[attr-defined,no-any-return]


def ical_feed(items: list[CalendarItem], *, now: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//FitNus//Calendar//KO")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "FitNus")
    for item in items:
        event = Event()
        event.add("uid", f"{item.kind}-{item.id}@fitnus")
        event.add("summary", item.title)
        event.add("location", item.location)
        event.add("dtstart", item.starts_at)
        event.add("dtend", item.ends_at)
        event.add("dtstamp", now)
        calendar.add_component(event)
    return calendar.to_ical()  # type: ignore[no-any-return]
