"""Clubs: create, find, join by application, members, hand over, dissolve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, model_validator

from fitnus.accounts.tokens import Principal
from fitnus.clubs import service
from fitnus.clubs.meetups import places_freed
from fitnus.clubs.models import ApplicationStatus, Club, ClubApplication
from fitnus.errors import InvalidInput
from fitnus.notifications.service import ring
from web.centers import Latitude, Limit, Longitude, Sport, Text100
from web.keys import CLOCK, KEYS, MEETUP_COMMANDS, MEETUPS_FULL, REDIS, service_zone
from web.pagination import decode_cursor, encode_cursor
from web.routing import Api
from web.schemas import RequestBody, json

api = Api()

Description = Annotated[str, StringConstraints(max_length=5000)]
MaxMembers = Annotated[int, Field(ge=2, le=10_000)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
MAX_CLUB_RADIUS_M = 50_000


class ClubBody(RequestBody):
    name: Text100
    description: Description = ""
    sports: list[Sport] = Field(min_length=1, max_length=10)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    max_members: MaxMembers | None = None

    @model_validator(mode="after")
    def a_place_has_both_coordinates(self) -> ClubBody:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together")
        return self


class ClubPatch(RequestBody):
    name: Text100 | None = None
    description: Description | None = None
    sports: list[Sport] | None = Field(default=None, min_length=1, max_length=10)
    max_members: MaxMembers | None = None

    def changes(self) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True)
        nulled = sorted(name for name in {"name", "description", "sports"} & changes.keys()
                        if changes[name] is None)
        if nulled:
            raise InvalidInput(f"{', '.join(nulled)} cannot be null", code="validation_failed")
        return changes


class ClubOut(BaseModel):
    id: int
    name: str
    description: str
    sports: list[str]
    latitude: float | None
    longitude: float | None
    leader_id: int
    member_count: int
    max_members: int | None
    created_at: datetime


class ClubList(BaseModel):
    items: list[ClubOut]
    next_cursor: str | None


class ClubQuery(BaseModel):
    q: Annotated[str, StringConstraints(max_length=100)] | None = None
    sport: Sport | None = None
    lat: Latitude | None = None
    lng: Longitude | None = None
    radius_m: Annotated[int, Field(ge=1, le=MAX_CLUB_RADIUS_M)] = 5_000
    limit: Limit = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class ClubPath(BaseModel):
    club_id: Id


class ApplicationPath(ClubPath):
    application_id: Id


class MemberPath(ClubPath):
    user_id: Id


class ApplicationBody(RequestBody):
    message: Annotated[str, StringConstraints(max_length=500)] = ""


class ApplicationOut(BaseModel):
    id: int
    club_id: int
    user_id: int
    applicant_name: str
    message: str
    status: Literal["pending", "accepted", "rejected"]
    created_at: datetime
    decided_at: datetime | None


class ApplicationList(BaseModel):
    items: list[ApplicationOut]
    next_cursor: str | None


class ApplicationQuery(BaseModel):
    status: Literal["pending", "accepted", "rejected"] | None = None
    limit: Limit = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class MyClubOut(ClubOut):
    role: Literal["leader", "member"]


class MyClubList(BaseModel):
    items: list[MyClubOut]
    next_cursor: str | None


class PageQuery(BaseModel):
    limit: Limit = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class MemberOut(BaseModel):
    user_id: int
    name: str
    role: Literal["leader", "member"]
    joined_at: datetime


class MemberList(BaseModel):
    items: list[MemberOut]


class LeaderBody(RequestBody):
    user_id: Id


def club_out(club: Club, zone: ZoneInfo) -> ClubOut:
    return ClubOut(
        id=club.id, name=club.name, description=club.description, sports=list(club.sports),
        latitude=club.latitude, longitude=club.longitude,
        leader_id=club.leader_id,  # type: ignore[attr-defined]
        member_count=club.member_count, max_members=club.max_members,
        created_at=club.created_at.astimezone(zone),
    )


def application_out(application: ClubApplication, zone: ZoneInfo) -> ApplicationOut:
    """``application.user`` fetched: the leader decides knowing who asks."""
    return ApplicationOut(
        id=application.id, club_id=application.club_id,  # type: ignore[attr-defined]
        user_id=application.user_id,  # type: ignore[attr-defined]
        applicant_name=application.user.name,
        message=application.message, status=application.status.value,
        created_at=application.created_at.astimezone(zone),
        decided_at=None if application.decided_at is None
        else application.decided_at.astimezone(zone),
    )


def _after_id(cursor: str | None) -> int | None:
    return None if cursor is None else int(decode_cursor(cursor, [int])[0])


async def _ring(request: web.Request, *user_ids: int) -> None:
    await ring(request.app[REDIS], request.app[KEYS], user_ids)


@api.route("POST", "/api/v1/clubs", tag="clubs",
           summary="Start a club; you lead it. 409 club_name_taken (names compared "
                   "case-folded, spaces trimmed)",
           body=ClubBody, auth=True, responses={201: ClubOut}, errors=(400, 401, 409))
async def create_club(
    request: web.Request, *, body: ClubBody, principal: Principal
) -> web.Response:
    club = await service.create_club(
        principal=principal, clock=request.app[CLOCK],
        draft=service.ClubDraft(**body.model_dump()),
    )
    return json(club_out(club, service_zone(request)), 201)


@api.route("GET", "/api/v1/clubs", tag="clubs",
           summary="Find clubs by name, sport and place (within radius_m of lat, lng)",
           query=ClubQuery, responses={200: ClubList}, errors=(400,))
async def find_clubs(request: web.Request, *, query: ClubQuery) -> web.Response:
    if (query.lat is None) != (query.lng is None):
        raise InvalidInput("lat and lng come together", code="validation_failed")
    near = None if query.lat is None or query.lng is None else service.Near(
        query.lat, query.lng, query.radius_m)
    clubs = await service.search_clubs(q=query.q, sport=query.sport, near=near,
                                       after_id=_after_id(query.cursor), limit=query.limit)
    page, more = clubs[: query.limit], len(clubs) > query.limit
    zone = service_zone(request)
    return json(ClubList(items=[club_out(club, zone) for club in page],
                         next_cursor=encode_cursor([page[-1].id]) if more else None))


@api.route("GET", "/api/v1/me/clubs", tag="clubs",
           summary="The clubs you belong to, and your role in each, in the order you joined",
           query=PageQuery, auth=True, responses={200: MyClubList}, errors=(400, 401))
async def my_clubs(request: web.Request, *, query: PageQuery, principal: Principal
                   ) -> web.Response:
    memberships = await service.memberships_of(
        user_id=principal.user_id, after_id=_after_id(query.cursor), limit=query.limit)
    page, more = memberships[: query.limit], len(memberships) > query.limit
    zone = service_zone(request)
    return json(MyClubList(
        items=[MyClubOut(**club_out(member.club, zone).model_dump(), role=member.role.value)
               for member in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None))


@api.route("GET", "/api/v1/clubs/{club_id}", tag="clubs", summary="One club",
           path_params=ClubPath, responses={200: ClubOut}, errors=(404,))
async def get_club(request: web.Request, *, path: ClubPath) -> web.Response:
    return json(club_out(await service.club_by_id(path.club_id), service_zone(request)))


@api.route("PATCH", "/api/v1/clubs/{club_id}", tag="clubs", summary="Change your club",
           path_params=ClubPath, body=ClubPatch, auth=True, responses={200: ClubOut},
           errors=(400, 401, 403, 404, 409))
async def update_club(
    request: web.Request, *, path: ClubPath, body: ClubPatch, principal: Principal
) -> web.Response:
    club = await service.update_club(principal=principal, club_id=path.club_id,
                                     changes=body.changes(), clock=request.app[CLOCK])
    return json(club_out(club, service_zone(request)))


@api.route("DELETE", "/api/v1/clubs/{club_id}", tag="clubs",
           summary="Dissolve a club (its leader, admins); 409 meetups_ahead while anyone "
                   "holds a place at one of its meetups ahead, or waits for one",
           path_params=ClubPath, auth=True, responses={204: None}, errors=(401, 403, 404, 409))
async def dissolve_club(
    request: web.Request, *, path: ClubPath, principal: Principal
) -> web.Response:
    await service.dissolve_club(principal=principal, club_id=path.club_id,
                                clock=request.app[CLOCK])
    return web.Response(status=204)


@api.route("POST", "/api/v1/clubs/{club_id}/applications", tag="clubs",
           summary="Apply to join; the leader decides. 409 already_member, "
                   "already_applied, club_full",
           path_params=ClubPath, body=ApplicationBody, auth=True,
           responses={201: ApplicationOut}, errors=(400, 401, 404, 409))
async def apply_to_club(
    request: web.Request, *, path: ClubPath, body: ApplicationBody, principal: Principal
) -> web.Response:
    application, leader = await service.apply(principal=principal, club_id=path.club_id,
                                              message=body.message, clock=request.app[CLOCK])
    await _ring(request, leader)
    await application.fetch_related("user")
    return json(application_out(application, service_zone(request)), 201)


@api.route("GET", "/api/v1/clubs/{club_id}/applications", tag="clubs",
           summary="Applications to your club", path_params=ClubPath,
           query=ApplicationQuery, auth=True, responses={200: ApplicationList},
           errors=(400, 401, 403, 404))
async def list_applications(
    request: web.Request, *, path: ClubPath, query: ApplicationQuery, principal: Principal
) -> web.Response:
    applications = await service.applications_of(
        principal=principal, club_id=path.club_id,
        status=None if query.status is None else ApplicationStatus(query.status),
        after_id=_after_id(query.cursor), limit=query.limit,
    )
    page, more = applications[: query.limit], len(applications) > query.limit
    zone = service_zone(request)
    return json(ApplicationList(
        items=[application_out(application, zone) for application in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None))


async def _decide(request: web.Request, path: ApplicationPath, principal: Principal,
                  *, accept: bool) -> web.Response:
    decided = await service.decide_application(
        principal=principal, club_id=path.club_id, application_id=path.application_id,
        accept=accept, clock=request.app[CLOCK])
    await _ring(request, decided.notified)
    await decided.application.fetch_related("user")
    return json(application_out(decided.application, service_zone(request)))


@api.route("POST", "/api/v1/clubs/{club_id}/applications/{application_id}/accept",
           tag="clubs", summary="Accept an application: a member, if the cap allows "
                                "(409 club_full); the applicant is told",
           path_params=ApplicationPath, auth=True, responses={200: ApplicationOut},
           errors=(401, 403, 404, 409))
async def accept_application(
    request: web.Request, *, path: ApplicationPath, principal: Principal
) -> web.Response:
    return await _decide(request, path, principal, accept=True)


@api.route("POST", "/api/v1/clubs/{club_id}/applications/{application_id}/reject",
           tag="clubs", summary="Reject an application; the applicant is told",
           path_params=ApplicationPath, auth=True, responses={200: ApplicationOut},
           errors=(401, 403, 404, 409))
async def reject_application(
    request: web.Request, *, path: ApplicationPath, principal: Principal
) -> web.Response:
    return await _decide(request, path, principal, accept=False)


@api.route("GET", "/api/v1/clubs/{club_id}/members", tag="clubs",
           summary="The club's members (members only)", path_params=ClubPath, auth=True,
           responses={200: MemberList}, errors=(401, 403, 404))
async def list_members(
    request: web.Request, *, path: ClubPath, principal: Principal
) -> web.Response:
    zone = service_zone(request)
    return json(MemberList(items=[
        MemberOut(user_id=member.user_id,  # type: ignore[attr-defined]
                  name=member.user.name, role=member.role.value,
                  joined_at=member.joined_at.astimezone(zone))
        for member in await service.members_of(principal=principal, club_id=path.club_id)
    ]))


@api.route("DELETE", "/api/v1/clubs/{club_id}/members/{user_id}", tag="clubs",
           summary="Leave the club, or remove a member (its leader), with their places at "
                   "its future meetups (fees refunded); 409 leader_must_hand_over",
           path_params=MemberPath, auth=True, responses={204: None},
           errors=(401, 403, 404, 409))
async def remove_member(
    request: web.Request, *, path: MemberPath, principal: Principal
) -> web.Response:
    freed = await service.remove_member(principal=principal, club_id=path.club_id,
                                        user_id=path.user_id, clock=request.app[CLOCK])
    await places_freed(freed, commands=request.app[MEETUP_COMMANDS],
                       sold_out=request.app[MEETUPS_FULL])
    return web.Response(status=204)


@api.route("POST", "/api/v1/clubs/{club_id}/leader", tag="clubs",
           summary="Hand the club over to another member", path_params=ClubPath,
           body=LeaderBody, auth=True, responses={200: ClubOut},
           errors=(400, 401, 403, 404, 409))
async def hand_over(
    request: web.Request, *, path: ClubPath, body: LeaderBody, principal: Principal
) -> web.Response:
    club = await service.hand_over(principal=principal, club_id=path.club_id,
                                   user_id=body.user_id, clock=request.app[CLOCK])
    return json(club_out(club, service_zone(request)))
