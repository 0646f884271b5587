from __future__ import annotations

from datetime import date, datetime
from json import dumps as json_dumps
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, model_validator

from fitnus.accounts.tokens import Principal
from fitnus.booking.service import request_withdrawals
from fitnus.centers import service
from fitnus.centers.models import Center, Program, Timeslot
from fitnus.centers.rules import (
    MAX_CAPACITY,
    MAX_DURATION_MINUTES,
    MAX_PRICE_COUPONS,
    MAX_WEEKLY_RANGE_DAYS,
    MAX_WEEKLY_TIMESLOTS,
    MIN_CAPACITY,
    MIN_DURATION_MINUTES,
    MIN_PRICE_COUPONS,
    SPORTS,
    weekly_starts,
)
from fitnus.errors import InvalidInput
from fitnus.search.index import MAX_RADIUS_M, CenterQuery, SearchCursor, SearchPage
from web.keys import CENTER_INDEX, CLOCK, KEYS, MESSAGES, REDIS, service_zone
from web.pagination import decode_cursor, encode_cursor
from web.routing import Api
from web.schemas import (
    MAX_YEAR,
    MIN_YEAR,
    LocalTime,
    Moment,
    RequestBody,
    json,
    plausible_moment,
)

api = Api()

Sport = Literal[SPORTS]  # type: ignore[valid-type]
Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Limit = Annotated[int, Field(ge=1, le=100)]


class CenterBody(RequestBody):
    name: Text100
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=200)]
    latitude: Latitude
    longitude: Longitude
    sports: list[Sport] = Field(min_length=1, max_length=len(SPORTS))
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9+\-() ]{3,32}$")] | None = None
    opens_at: LocalTime | None = None
    closes_at: LocalTime | None = None

    @model_validator(mode="after")
    def _distinct_sports(self) -> CenterBody:
        if len(set(self.sports)) != len(self.sports):
            raise ValueError("sports must not repeat")
        return self


class CenterPatch(RequestBody):
    name: Text100 | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    address: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    sports: list[Sport] | None = Field(default=None, min_length=1, max_length=len(SPORTS))
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9+\-() ]{3,32}$")] | None = None
    opens_at: LocalTime | None = None
    closes_at: LocalTime | None = None

    def changes(self) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True)
        required = {"name", "description", "address", "latitude", "longitude", "sports"}
        nulled = sorted(name for name in required & changes.keys() if changes[name] is None)
        if nulled:
            raise InvalidInput(f"{', '.join(nulled)} cannot be null", code="validation_failed")
        if "sports" in changes and len(set(changes["sports"])) != len(changes["sports"]):
            raise InvalidInput("sports must not repeat", code="validation_failed")
        return changes


class CenterOut(BaseModel):
    id: int
    owner_id: int
    name: str
    description: str
    address: str
    latitude: float
    longitude: float
    sports: list[str]
    phone: str | None
    opens_at: LocalTime | None
    closes_at: LocalTime | None
    created_at: datetime
    updated_at: datetime


class CenterPath(BaseModel):
    center_id: int = Field(ge=1, le=2**63 - 1)


class SearchQuery(BaseModel):
    lat: Latitude
    lng: Longitude
    radius_m: float = Field(default=3_000, ge=0, le=MAX_RADIUS_M)
    sport: Sport | None = None
    q: Annotated[str, StringConstraints(max_length=100)] | None = None
    limit: Limit = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class CenterFound(BaseModel):
    id: int
    name: str
    address: str
    latitude: float
    longitude: float
    sports: list[str]
    distance_m: float


class CenterPage(BaseModel):
    items: list[CenterFound]
    next_cursor: str | None


class ProgramBody(RequestBody):
    name: Text100
    sport: Sport
    price_coupons: int = Field(ge=MIN_PRICE_COUPONS, le=MAX_PRICE_COUPONS)
    duration_minutes: int = Field(ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES)
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    parallel_sessions: bool = Field(
        default=False, description="true if sessions of this program may overlap"
    )


class ProgramOut(BaseModel):
    id: int
    center_id: int
    name: str
    sport: str
    price_coupons: int
    duration_minutes: int
    description: str
    parallel_sessions: bool


class ListQuery(BaseModel):
    limit: Limit = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class ProgramPage(BaseModel):
    items: list[ProgramOut]
    next_cursor: str | None


class ProgramPath(BaseModel):
    program_id: int = Field(ge=1, le=2**63 - 1)


class TimeslotBody(RequestBody):
    starts_at: Moment
    capacity: int = Field(ge=MIN_CAPACITY, le=MAX_CAPACITY)


class WeeklyTimeslotsBody(RequestBody):
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        min_length=1, max_length=7, description="ISO weekdays: 1 = Monday … 7 = Sunday"
    )
    times: list[LocalTime] = Field(min_length=1, max_length=48,
                                   description="local start times in the service time zone")
    from_date: date = Field(ge=date(MIN_YEAR, 1, 1), le=date(MAX_YEAR, 12, 31))
    to_date: date = Field(ge=date(MIN_YEAR, 1, 1), le=date(MAX_YEAR, 12, 31))
    capacity: int = Field(ge=MIN_CAPACITY, le=MAX_CAPACITY)

    @model_validator(mode="after")
    def _sane_range(self) -> WeeklyTimeslotsBody:
        if self.to_date < self.from_date:
            raise ValueError("to_date is before from_date")
        if (self.to_date - self.from_date).days >= MAX_WEEKLY_RANGE_DAYS:
            raise ValueError(f"a pattern spans at most {MAX_WEEKLY_RANGE_DAYS} days")
        return self


class TimeslotOut(BaseModel):
    id: int
    program_id: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    reserved: int
    remaining: int


class TimeslotsOut(BaseModel):
    items: list[TimeslotOut]


class TimeslotQuery(ListQuery):
    from_: Moment | None = Field(default=None, alias="from")
    to: Moment | None = None


class TimeslotPage(BaseModel):
    items: list[TimeslotOut]
    next_cursor: str | None


class TimeslotPath(BaseModel):
    timeslot_id: int = Field(ge=1, le=2**63 - 1)


def center_out(center: Center, zone: ZoneInfo) -> CenterOut:
    return CenterOut(
        id=center.id, owner_id=center.owner_id,  # type: ignore[attr-defined]
        name=center.name, description=center.description, address=center.address,
        latitude=center.latitude, longitude=center.longitude, sports=center.sports,
        phone=center.phone, opens_at=center.opens_at, closes_at=center.closes_at,
        created_at=center.created_at.astimezone(zone),
        updated_at=center.updated_at.astimezone(zone),
    )


def program_out(program: Program) -> ProgramOut:
    return ProgramOut(
        id=program.id, center_id=program.center_id,  # type: ignore[attr-defined]
        name=program.name, sport=program.sport, price_coupons=program.price_coupons,
        duration_minutes=program.duration_minutes, description=program.description,
        parallel_sessions=program.parallel_sessions,
    )


def timeslot_out(timeslot: Timeslot, zone: ZoneInfo) -> TimeslotOut:
    return TimeslotOut(
        id=timeslot.id, program_id=timeslot.program_id,  # type: ignore[attr-defined]
        starts_at=timeslot.starts_at.astimezone(zone), ends_at=timeslot.ends_at.astimezone(zone),
        capacity=timeslot.capacity, reserved=timeslot.reserved,
        remaining=timeslot.capacity - timeslot.reserved - timeslot.offered,
    )


@api.route("POST", "/api/v1/centers", tag="centers", summary="Publish a center (owners)",
           body=CenterBody, auth=True, responses={201: CenterOut}, errors=(400, 401, 403))
async def create_center(
    request: web.Request, *, body: CenterBody, principal: Principal
) -> web.Response:
    center = await service.create_center(
        principal=principal, draft=service.CenterDraft(**body.model_dump()),
        clock=request.app[CLOCK], index_center=request.app[MESSAGES].index_center,
    )
    return json(center_out(center, service_zone(request)), 201)


@api.route("GET", "/api/v1/centers", tag="centers",
           summary="Centers near a point, nearest first", query=SearchQuery,
           responses={200: CenterPage}, errors=(400,))
async def search_centers(request: web.Request, *, query: SearchQuery) -> web.Response:
    page = await request.app[CENTER_INDEX].search(
        CenterQuery(
            latitude=query.lat, longitude=query.lng, radius_m=query.radius_m, sport=query.sport,
            text=query.q, limit=query.limit,
            after=SearchCursor.decode(query.cursor) if query.cursor else None,
        )
    )
    return web.Response(body=search_page_body(page), content_type="application/json")


def search_page_body(page: SearchPage) -> bytes:
    """The index stores each hit's summary as JSON: the page is spliced together
    rather than decoded and encoded again (CenterPage documents the shape)."""
    items = b",".join(
        b'%s,"distance_m":%.1f}' % (hit.summary_json[:-1], hit.distance_m) for hit in page.hits
    )
    next_cursor = json_dumps(page.next_cursor.encode() if page.next_cursor else None).encode()
    return b'{"items":[%s],"next_cursor":%s}' % (items, next_cursor)


class CenterList(BaseModel):
    items: list[CenterOut]
    next_cursor: str | None


@api.route("GET", "/api/v1/owner/centers", tag="centers",
           summary="Your own centers, by id (owners)", query=ListQuery, auth=True,
           responses={200: CenterList}, errors=(400, 401, 403))
async def owner_centers(
    request: web.Request, *, query: ListQuery, principal: Principal
) -> web.Response:
    after = decode_cursor(query.cursor, [int])[0] if query.cursor else None
    centers = await service.centers_of(principal, after_id=after, limit=query.limit)
    page, more = centers[: query.limit], len(centers) > query.limit
    zone = service_zone(request)
    return json(CenterList(
        items=[center_out(center, zone) for center in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    ))


@api.route("GET", "/api/v1/centers/{center_id}", tag="centers", summary="One center",
           path_params=CenterPath, responses={200: CenterOut}, errors=(404,))
async def get_center(request: web.Request, *, path: CenterPath) -> web.Response:
    return json(center_out(await service.center_by_id(path.center_id), service_zone(request)))


@api.route("PATCH", "/api/v1/centers/{center_id}", tag="centers",
           summary="Change a center (its owner, admins)", path_params=CenterPath,
           body=CenterPatch, auth=True, responses={200: CenterOut},
           errors=(400, 401, 403, 404))
async def update_center(
    request: web.Request, *, path: CenterPath, body: CenterPatch, principal: Principal
) -> web.Response:
    center = await service.update_center(
        principal=principal, center_id=path.center_id, changes=body.changes(),
        clock=request.app[CLOCK], index_center=request.app[MESSAGES].index_center,
    )
    return json(center_out(center, service_zone(request)))


@api.route("DELETE", "/api/v1/centers/{center_id}", tag="centers",
           summary="Close a center (its owner, admins): its future sessions are withdrawn "
                   "and their reservations cancelled with a full refund",
           path_params=CenterPath, auth=True,
           responses={204: None}, errors=(401, 403, 404))
async def delete_center(
    request: web.Request, *, path: CenterPath, principal: Principal
) -> web.Response:
    withdrawn = await service.delete_center(
        principal=principal, center_id=path.center_id, clock=request.app[CLOCK],
        index_center=request.app[MESSAGES].index_center,
    )
    await _cancel_reservations_of(request.app, withdrawn)
    return web.Response(status=204)


@api.route("POST", "/api/v1/centers/{center_id}/programs", tag="programs",
           summary="Add a program to your center", path_params=CenterPath, body=ProgramBody,
           auth=True, responses={201: ProgramOut}, errors=(400, 401, 403, 404))
async def create_program(
    request: web.Request, *, path: CenterPath, body: ProgramBody, principal: Principal
) -> web.Response:
    program = await service.create_program(
        principal=principal, center_id=path.center_id,
        draft=service.ProgramDraft(**body.model_dump()), clock=request.app[CLOCK],
    )
    return json(program_out(program), 201)


@api.route("GET", "/api/v1/centers/{center_id}/programs", tag="programs",
           summary="A center's programs", path_params=CenterPath, query=ListQuery,
           responses={200: ProgramPage}, errors=(400, 404))
async def list_programs(
    request: web.Request, *, path: CenterPath, query: ListQuery
) -> web.Response:
    after = decode_cursor(query.cursor, [int])[0] if query.cursor else None
    programs = await service.programs_of(path.center_id, after_id=after, limit=query.limit)
    page, more = programs[: query.limit], len(programs) > query.limit
    return json(ProgramPage(
        items=[program_out(program) for program in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    ))


@api.route("POST", "/api/v1/programs/{program_id}/timeslots", tag="timeslots",
           summary="Open a session of your program", path_params=ProgramPath, body=TimeslotBody,
           auth=True, responses={201: TimeslotOut}, errors=(400, 401, 403, 404, 409))
async def create_timeslot(
    request: web.Request, *, path: ProgramPath, body: TimeslotBody, principal: Principal
) -> web.Response:
    [timeslot] = await service.create_timeslots(
        principal=principal, program_id=path.program_id, starts=[body.starts_at],
        capacity=body.capacity, clock=request.app[CLOCK],
    )
    return json(timeslot_out(timeslot, service_zone(request)), 201)


@api.route("POST", "/api/v1/programs/{program_id}/timeslots/weekly", tag="timeslots",
           summary="Open a weekly pattern of sessions in one request", path_params=ProgramPath,
           body=WeeklyTimeslotsBody, auth=True, responses={201: TimeslotsOut},
           errors=(400, 401, 403, 404, 409))
async def create_weekly_timeslots(
    request: web.Request, *, path: ProgramPath, body: WeeklyTimeslotsBody, principal: Principal
) -> web.Response:
    zone = service_zone(request)
    starts = weekly_starts(
        weekdays=body.weekdays, start_times=body.times, first_day=body.from_date,
        last_day=body.to_date, time_zone=zone,
    )
    if not starts:
        raise InvalidInput("the pattern has no session in that range", code="empty_pattern")
    if len(starts) > MAX_WEEKLY_TIMESLOTS:
        raise InvalidInput(
            f"a pattern opens at most {MAX_WEEKLY_TIMESLOTS} sessions", code="pattern_too_large"
        )
    timeslots = await service.create_timeslots(
        principal=principal, program_id=path.program_id, starts=starts, capacity=body.capacity,
        clock=request.app[CLOCK],
    )
    return json(TimeslotsOut(items=[timeslot_out(slot, zone) for slot in timeslots]), 201)


@api.route("GET", "/api/v1/programs/{program_id}/timeslots", tag="timeslots",
           summary="A program's sessions, by start", path_params=ProgramPath, query=TimeslotQuery,
           responses={200: TimeslotPage}, errors=(400, 404))
async def list_timeslots(
    request: web.Request, *, path: ProgramPath, query: TimeslotQuery
) -> web.Response:
    zone = service_zone(request)
    after = None
    if query.cursor:
        start, timeslot_id = decode_cursor(
            query.cursor, [lambda raw: plausible_moment(datetime.fromisoformat(raw)), int]
        )
        after = (start, timeslot_id)
    timeslots = await service.timeslots_of(
        path.program_id, starts_from=query.from_, starts_before=query.to, after=after,
        limit=query.limit,
    )
    page, more = timeslots[: query.limit], len(timeslots) > query.limit
    return json(TimeslotPage(
        items=[timeslot_out(slot, zone) for slot in page],
        next_cursor=encode_cursor([page[-1].starts_at.isoformat(), page[-1].id]) if more else None,
    ))


@api.route("GET", "/api/v1/timeslots/{timeslot_id}", tag="timeslots", summary="One session",
           path_params=TimeslotPath, responses={200: TimeslotOut}, errors=(404,))
async def get_timeslot(request: web.Request, *, path: TimeslotPath) -> web.Response:
    return json(timeslot_out(await service.timeslot_by_id(path.timeslot_id), service_zone(request)))


@api.route("DELETE", "/api/v1/timeslots/{timeslot_id}", tag="timeslots",
           summary="Withdraw a session before it starts (its center's owner, admins): its "
                   "reservations are cancelled with a full refund; 409 once it has started",
           path_params=TimeslotPath, auth=True, responses={204: None},
           errors=(401, 403, 404, 409))
async def withdraw_timeslot(
    request: web.Request, *, path: TimeslotPath, principal: Principal
) -> web.Response:
    withdrawn = await service.withdraw_timeslot(
        principal=principal, timeslot_id=path.timeslot_id, clock=request.app[CLOCK])
    await _cancel_reservations_of(request.app, withdrawn)
    return web.Response(status=204)


async def _cancel_reservations_of(app: web.Application, withdrawn: list[int]) -> None:
    await request_withdrawals(withdrawn, redis=app[REDIS], keys=app[KEYS],
                              schedule_drain=app[MESSAGES].schedule_drain)
