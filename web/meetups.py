"""Club meetups: the leader publishes them; members join and leave through
the meetup's keyed queue, like bookings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from fitnus.accounts.tokens import Principal
from fitnus.clubs import meetups
from fitnus.clubs.models import Meetup
from web.booking import ReservationHeaders
from web.calendar import DEFAULT_RANGE_DAYS, RangeQuery
from web.centers import Latitude, Longitude, Text100
from web.clubs import ClubPath, Id
from web.commands import (
    CommandAccepted,
    ReservationAccepted,
    accepted,
    decided_within,
    result_within,
)
from web.keys import CLOCK, MEETUP_COMMANDS, MEETUPS_FULL, service_zone
from web.routing import Api
from web.schemas import Moment, RequestBody, json

api = Api()

# A leave answers once decided (204) unless its queue is this busy (202).
LEAVE_WAIT_SECONDS = 10.0


class MeetupBody(RequestBody):
    title: Text100
    starts_at: Moment
    duration_minutes: int = Field(ge=10, le=24 * 60)
    place: Annotated[str, Field(min_length=1, max_length=200)]
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    capacity: int = Field(ge=1, le=10_000)
    fee_coupons: int = Field(default=0, ge=0, le=1_000)


class MeetupOut(BaseModel):
    id: int
    club_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    place: str
    latitude: float | None
    longitude: float | None
    capacity: int
    joined: int
    remaining: int
    fee_coupons: int


class MeetupList(BaseModel):
    items: list[MeetupOut]


class MeetupPath(BaseModel):
    meetup_id: Id


class AttendeeOut(BaseModel):
    meetup_id: int
    user_id: int
    status: Literal["joined"] = "joined"


def meetup_out(meetup: Meetup, request: web.Request) -> MeetupOut:
    zone = service_zone(request)
    return MeetupOut(
        id=meetup.id, club_id=meetup.club_id,  # type: ignore[attr-defined]
        title=meetup.title, starts_at=meetup.starts_at.astimezone(zone),
        ends_at=meetup.ends_at.astimezone(zone), place=meetup.place,
        latitude=meetup.latitude, longitude=meetup.longitude, capacity=meetup.capacity,
        joined=meetup.joined, remaining=meetup.capacity - meetup.joined - meetup.offered,
        fee_coupons=meetup.fee_coupons,
    )


@api.route("POST", "/api/v1/clubs/{club_id}/meetups", tag="clubs",
           summary="Publish a meetup of your club", path_params=ClubPath, body=MeetupBody,
           auth=True, responses={201: MeetupOut}, errors=(400, 401, 403, 404))
async def create_meetup(
    request: web.Request, *, path: ClubPath, body: MeetupBody, principal: Principal
) -> web.Response:
    meetup = await meetups.create_meetup(
        principal=principal, club_id=path.club_id, clock=request.app[CLOCK],
        draft=meetups.MeetupDraft(**body.model_dump()))
    return json(meetup_out(meetup, request), 201)


@api.route("GET", "/api/v1/clubs/{club_id}/meetups", tag="clubs",
           summary="The club's meetups by start (members only)", path_params=ClubPath,
           query=RangeQuery, auth=True, responses={200: MeetupList},
           errors=(400, 401, 403, 404))
async def list_meetups(
    request: web.Request, *, path: ClubPath, query: RangeQuery, principal: Principal
) -> web.Response:
    starts_from = query.from_ or request.app[CLOCK].now()
    starts_before = query.to or starts_from + timedelta(days=DEFAULT_RANGE_DAYS)
    found = await meetups.meetups_of(principal=principal, club_id=path.club_id,
                                     starts_from=starts_from, starts_before=starts_before)
    return json(MeetupList(items=[meetup_out(meetup, request) for meetup in found]))


@api.route("POST", "/api/v1/meetups/{meetup_id}/attendees", tag="clubs",
           summary="Join a meetup of your club: 202 with your place in line, or with "
                   "Prefer: wait=N 201/409 once decided (meetup_full, already_joined, "
                   "schedule_conflict, not_a_member, meetup_closed, insufficient_coupons)",
           path_params=MeetupPath, headers=ReservationHeaders, auth=True,
           responses={202: ReservationAccepted, 201: AttendeeOut},
           errors=(400, 401, 404, 409))
async def join_meetup(
    request: web.Request, *, path: MeetupPath, headers: ReservationHeaders,
    principal: Principal,
) -> web.Response:
    queued = await meetups.request_join(
        request.app[MEETUP_COMMANDS], principal=principal, meetup_id=path.meetup_id,
        idempotency_key=headers.idempotency_key, sold_out=request.app[MEETUPS_FULL])
    if await result_within(request.app, principal, queued, prefer=headers.prefer,
                           refused=meetups.MeetupRefused) is None:
        return accepted(queued)
    return json(AttendeeOut(meetup_id=path.meetup_id, user_id=principal.user_id), 201)


@api.route("DELETE", "/api/v1/meetups/{meetup_id}/attendees/me", tag="clubs",
           summary="Leave a meetup; its fee comes back 24 h or more before the start",
           path_params=MeetupPath, auth=True,
           responses={204: None, 202: CommandAccepted}, errors=(401, 404, 409))
async def leave_meetup(
    request: web.Request, *, path: MeetupPath, principal: Principal
) -> web.Response:
    queued = await meetups.request_leave(request.app[MEETUP_COMMANDS], principal=principal,
                                         meetup_id=path.meetup_id,
                                         sold_out=request.app[MEETUPS_FULL])
    return await decided_within(request.app, principal, queued,
                                timeout_seconds=LEAVE_WAIT_SECONDS, refused=meetups.MeetupRefused)
