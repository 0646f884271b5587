from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from fitnus.accounts.tokens import Principal
from fitnus.booking.calendar import (
    FEED_FUTURE_DAYS,
    FEED_PAST_DAYS,
    calendar_between,
    feed_owner,
    ical_feed,
    reservations_between,
    revoke_feed_token,
    rotate_feed_token,
)
from fitnus.booking.repeat import repeat_month
from fitnus.booking.rules import Month
from web.booking import ReservationOut, reservation_out
from web.keys import BOOKING_DESK, CLOCK, SETTINGS, service_zone
from web.pagination import decode_cursor, encode_cursor
from web.routing import Api
from web.schemas import Moment, RequestBody, json, plausible_moment
from web.wallet import IdempotencyHeader

api = Api()

DEFAULT_RANGE_DAYS = 31
# YYYY-MM within the years every other date of the API takes.
MONTH_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"
FEED_PATH = "/api/v1/me/calendar.ics"


class RangeQuery(BaseModel):
    from_: Moment | None = Field(default=None, alias="from",
                                 description="default: now")
    to: Moment | None = Field(default=None, description="default: 31 days after 'from'")


class ReservationQuery(RangeQuery):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class ReservationList(BaseModel):
    items: list[ReservationOut]
    next_cursor: str | None


class CalendarEntry(BaseModel):
    kind: Literal["reservation", "club_event"]
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    timeslot_id: int | None = Field(default=None, description="a reservation's")
    center_id: int | None = Field(default=None, description="a reservation's")
    club_id: int | None = Field(default=None, description="a club_event's")


class CalendarOut(BaseModel):
    items: list[CalendarEntry]


class FeedOut(BaseModel):
    token: str
    url: str


class FeedQuery(BaseModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=100)]


def public_url(request: web.Request, path: str) -> str:
    """A link for a client to keep: under PUBLIC_BASE_URL when it is set, not
    under whatever Host header this request happened to carry."""
    base = request.app[SETTINGS].public_base_url or f"{request.scheme}://{request.host}"
    return f"{base}{path}"


def _range(request: web.Request, query: RangeQuery) -> tuple[datetime, datetime]:
    starts_from = query.from_ or request.app[CLOCK].now()
    return starts_from, query.to or starts_from + timedelta(days=DEFAULT_RANGE_DAYS)


@api.route("GET", "/api/v1/me/reservations", tag="calendar",
           summary="Your reservations by start (cancelled ones included)",
           query=ReservationQuery, auth=True, responses={200: ReservationList},
           errors=(400, 401))
async def my_reservations(
    request: web.Request, *, query: ReservationQuery, principal: Principal
) -> web.Response:
    starts_from, starts_before = _range(request, query)
    after = None
    if query.cursor:
        start, reservation_id = decode_cursor(
            query.cursor, [lambda raw: plausible_moment(datetime.fromisoformat(raw)), int]
        )
        after = (start, reservation_id)
    reservations = await reservations_between(
        principal.user_id, starts_from=starts_from, starts_before=starts_before,
        include_cancelled=True, after=after, limit=query.limit + 1,
    )
    page, more = reservations[: query.limit], len(reservations) > query.limit
    zone = service_zone(request)
    return json(ReservationList(
        items=[reservation_out(r, zone) for r in page],
        next_cursor=encode_cursor([page[-1].starts_at.isoformat(), page[-1].id]) if more else None,
    ))


@api.route("GET", "/api/v1/me/calendar", tag="calendar",
           summary="Everything on your calendar, by start", query=RangeQuery, auth=True,
           responses={200: CalendarOut}, errors=(400, 401))
async def my_calendar(
    request: web.Request, *, query: RangeQuery, principal: Principal
) -> web.Response:
    starts_from, starts_before = _range(request, query)
    zone = service_zone(request)
    items = await calendar_between(principal.user_id, starts_from=starts_from,
                                   starts_before=starts_before)
    return json(CalendarOut(items=[
        CalendarEntry(kind=item.kind, id=item.id, title=item.title,  # type: ignore[arg-type]
                      starts_at=item.starts_at.astimezone(zone),
                      ends_at=item.ends_at.astimezone(zone), location=item.location,
                      timeslot_id=item.timeslot_id, center_id=item.center_id,
                      club_id=item.club_id)
        for item in items
    ]))


class RepeatBody(RequestBody):
    from_month: Annotated[str, StringConstraints(pattern=MONTH_PATTERN)] = Field(
        description="YYYY-MM, the month whose confirmed bookings repeat")
    to_month: Annotated[str, StringConstraints(pattern=MONTH_PATTERN)] = Field(
        description="YYYY-MM, the month they repeat into")


class RepeatedOut(BaseModel):
    source_reservation_id: int
    timeslot_id: int | None
    command_id: str | None
    reason: str | None = Field(
        default=None, description="why nothing was asked for: no_matching_week, "
                                  "no_matching_timeslot, sold_out, timeslot_closed")


class RepeatOut(BaseModel):
    items: list[RepeatedOut]


def _month(text: str) -> Month:
    year, month = text.split("-")
    return Month(int(year), int(month))


@api.route("POST", "/api/v1/me/calendar/repeat", tag="calendar",
           summary="Repeat a month: each confirmed booking of from_month asked for again in "
                   "the same program's session on the same weekday and time of day of the "
                   "matching week of to_month, one ordinary reservation command each",
           body=RepeatBody, headers=IdempotencyHeader, auth=True,
           responses={202: RepeatOut}, errors=(400, 401))
async def repeat_my_month(
    request: web.Request, *, body: RepeatBody, headers: IdempotencyHeader,
    principal: Principal,
) -> web.Response:
    repeated = await repeat_month(
        request.app[BOOKING_DESK], principal=principal, from_month=_month(body.from_month),
        to_month=_month(body.to_month), zone=service_zone(request),
        idempotency_key=headers.idempotency_key,
    )
    return json(RepeatOut(items=[
        RepeatedOut(source_reservation_id=item.source_reservation_id,
                    timeslot_id=item.timeslot_id,
                    command_id=None if item.command_id is None else str(item.command_id),
                    reason=item.reason)
        for item in repeated
    ]), 202)


@api.route("POST", "/api/v1/me/calendar/feed", tag="calendar",
           summary="A new secret iCalendar feed URL (the previous one stops working)",
           auth=True, responses={201: FeedOut}, errors=(401,))
async def new_feed(request: web.Request, *, principal: Principal) -> web.Response:
    token = await rotate_feed_token(user_id=principal.user_id, now=request.app[CLOCK].now())
    return json(FeedOut(token=token, url=public_url(request, f"{FEED_PATH}?token={token}")), 201)


@api.route("DELETE", "/api/v1/me/calendar/feed", tag="calendar",
           summary="Revoke your iCalendar feed URL", auth=True, responses={204: None},
           errors=(401,))
async def revoke_feed(request: web.Request, *, principal: Principal) -> web.Response:
    await revoke_feed_token(user_id=principal.user_id)
    return web.Response(status=204)


@api.route("GET", FEED_PATH, tag="calendar",
           summary="Your calendar for phone calendar apps (secret URL from POST .../feed)",
           query=FeedQuery, responses={200: "text/calendar"}, errors=(400, 401))
async def calendar_feed(request: web.Request, *, query: FeedQuery) -> web.Response:
    user_id = await feed_owner(query.token)
    now = request.app[CLOCK].now()
    items = await calendar_between(user_id, starts_from=now - timedelta(days=FEED_PAST_DAYS),
                                   starts_before=now + timedelta(days=FEED_FUTURE_DAYS))
    return web.Response(body=ical_feed(items, now=now), content_type="text/calendar",
                        charset="utf-8", headers={"Cache-Control": "private, max-age=300"})
