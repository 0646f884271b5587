"""Waitlists of sold-out timeslots and full meetups: join, see where you
stand, claim an offered place, leave."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from fitnus.accounts.tokens import Principal
from fitnus.commands.models import CommandStatus
from fitnus.waitlist import service
from fitnus.waitlist.service import Placed, WaitlistRefused
from web.booking import ReservationHeaders
from web.clubs import Id
from web.commands import CommandAccepted, ReservationAccepted, accepted, result_within
from web.keys import CLOCK, OUTCOMES, WAITLIST_DESK, service_zone
from web.meetups import MeetupPath
from web.routing import Api, Link
from web.schemas import RequestBody, json

api = Api()

# A leave answers once decided (204) unless its queue is this busy (202):
# well within a client's usual 10 s timeout.
LEAVE_WAIT_SECONDS = 5.0


class WaitlistBody(RequestBody):
    auto_claim: bool = Field(
        default=False,
        description="take a freed place at once, paid from your coupons, while its "
                    "cancellation would still be refunded in full; later you are offered it")


class TimeslotPath(BaseModel):
    timeslot_id: Id


class WaitlistPath(BaseModel):
    waitlist_id: Id


class WaitlistOut(BaseModel):
    id: int
    timeslot_id: int | None
    meetup_id: int | None
    position: int | None = Field(description="1 is next; null unless waiting")
    status: Literal["waiting", "offered", "claimed", "expired", "left"]
    auto_claim: bool
    offer_expires_at: datetime | None
    held_coupons: int
    end_reason: str | None = Field(
        description="why it ended unclaimed: expired, insufficient_coupons, "
                    "schedule_conflict, not_admitted (left the club), closed")
    reservation_id: int | None = Field(description="the reservation a claimed timeslot "
                                                   "place became")


class WaitlistList(BaseModel):
    items: list[WaitlistOut]


class ClaimedOut(BaseModel):
    waitlist_id: int
    status: Literal["claimed"] = "claimed"
    reservation_id: int | None
    meetup_id: int | None


def waitlist_out(placed: Placed, request: web.Request) -> WaitlistOut:
    entry = placed.entry
    timeslot_id = entry.timeslot_id  # type: ignore[attr-defined]
    expires_at = entry.offer_expires_at
    return WaitlistOut(
        id=entry.id, timeslot_id=timeslot_id,
        meetup_id=entry.meetup_id,  # type: ignore[attr-defined]
        position=placed.position, status=entry.status.value, auto_claim=entry.auto_claim,
        offer_expires_at=None if expires_at is None else expires_at.astimezone(
            service_zone(request)),
        held_coupons=entry.held_coupons, end_reason=entry.end_reason,
        reservation_id=entry.seat_id if timeslot_id is not None else None,
    )


JOIN_SUMMARY = ("201 with your place in line; 409 not_sold_out (a place is free: book it), "
                "already_waiting, already_reserved")


@api.route("POST", "/api/v1/timeslots/{timeslot_id}/waitlist", tag="waitlist",
           summary=f"Join a sold-out timeslot's waitlist: {JOIN_SUMMARY}, timeslot_closed",
           path_params=TimeslotPath, body=WaitlistBody, auth=True,
           responses={201: WaitlistOut}, errors=(400, 401, 404, 409))
async def join_timeslot_waitlist(
    request: web.Request, *, path: TimeslotPath, body: WaitlistBody, principal: Principal,
) -> web.Response:
    placed = await service.join_timeslot_waitlist(
        principal=principal, timeslot_id=path.timeslot_id, auto_claim=body.auto_claim,
        clock=request.app[CLOCK])
    return json(waitlist_out(placed, request), 201)


@api.route("POST", "/api/v1/meetups/{meetup_id}/waitlist", tag="waitlist",
           summary=f"Join a full meetup's waitlist (members): {JOIN_SUMMARY}, meetup_closed, "
                   "not_a_member",
           path_params=MeetupPath, body=WaitlistBody, auth=True,
           responses={201: WaitlistOut}, errors=(400, 401, 404, 409))
async def join_meetup_waitlist(
    request: web.Request, *, path: MeetupPath, body: WaitlistBody, principal: Principal,
) -> web.Response:
    placed = await service.join_meetup_waitlist(
        principal=principal, meetup_id=path.meetup_id, auto_claim=body.auto_claim,
        clock=request.app[CLOCK])
    return json(waitlist_out(placed, request), 201)


@api.route("GET", "/api/v1/me/waitlist", tag="waitlist",
           summary="Your waitlist entries, newest first (the latest 100)", auth=True,
           responses={200: WaitlistList}, errors=(401,))
async def my_waitlist(request: web.Request, *, principal: Principal) -> web.Response:
    return json(WaitlistList(items=[
        waitlist_out(placed, request) for placed in await service.entries_of(principal.user_id)
    ]))


@api.route("POST", "/api/v1/waitlist/{waitlist_id}/claim", tag="waitlist",
           summary="Claim the place offered to you: 202 with your place in the session's "
                   "line, or with Prefer: wait=N 201/409 once decided (offer_expired, "
                   "not_offered, schedule_conflict; the offer stands after a conflict)",
           path_params=WaitlistPath, headers=ReservationHeaders, auth=True,
           responses={202: ReservationAccepted, 201: ClaimedOut},
           errors=(400, 401, 404, 409),
           links=(Link(status=202, operation_id="get_command",
                       parameters={"command_id": "$response.body#/command_id"}),))
async def claim_offer(
    request: web.Request, *, path: WaitlistPath, headers: ReservationHeaders,
    principal: Principal,
) -> web.Response:
    queued = await request.app[WAITLIST_DESK].request_claim(
        principal=principal, entry_id=path.waitlist_id, idempotency_key=headers.idempotency_key)
    result = await result_within(request.app, principal, queued, prefer=headers.prefer,
                                 refused=WaitlistRefused)
    if result is None:
        return accepted(queued)
    return json(ClaimedOut(waitlist_id=path.waitlist_id,
                           reservation_id=result.get("reservation_id"),
                           meetup_id=result.get("meetup_id")), 201)


@api.route("DELETE", "/api/v1/waitlist/{waitlist_id}", tag="waitlist",
           summary="Leave the waitlist, or decline the place offered (its coupons are "
                   "released and the next in line is offered it)",
           path_params=WaitlistPath, auth=True,
           responses={204: None, 202: CommandAccepted}, errors=(401, 404))
async def leave_waitlist(
    request: web.Request, *, path: WaitlistPath, principal: Principal
) -> web.Response:
    queued = await request.app[WAITLIST_DESK].request_leave(principal=principal,
                                                            entry_id=path.waitlist_id)
    if queued is not None:
        command = await request.app[OUTCOMES].wait(
            user_id=principal.user_id, command_id=queued.command_id,
            timeout_seconds=LEAVE_WAIT_SECONDS)
        if command.status is CommandStatus.PENDING:
            return json(CommandAccepted(command_id=str(command.id)), 202)
    return web.Response(status=204)
