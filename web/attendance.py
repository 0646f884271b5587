"""Check-in at the door and attendance for the center."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from fitnus.accounts.tokens import Principal
from fitnus.attendance.service import attendance_of, check_in, check_in_code
from web.booking import ReservationPath
from web.centers import CenterPath, TimeslotPath
from web.keys import CLOCK
from web.routing import Api
from web.schemas import RequestBody, json

api = Api()


class CheckInCodeOut(BaseModel):
    code: str
    valid_for_seconds: int


class CheckInBody(RequestBody):
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class CheckedInOut(BaseModel):
    status: Literal["attended"] = "attended"


class AttendeeOut(BaseModel):
    reservation_id: int
    user_name: str
    status: Literal["confirmed", "cancelled", "attended", "no_show"]


class AttendanceOut(BaseModel):
    items: list[AttendeeOut]


@api.route("GET", "/api/v1/centers/{center_id}/check-in-code", tag="attendance",
           summary="The code your kiosk shows now (TOTP: 6 digits, a new one every 30 s)",
           path_params=CenterPath, auth=True, responses={200: CheckInCodeOut},
           errors=(401, 403, 404))
async def get_check_in_code(
    request: web.Request, *, path: CenterPath, principal: Principal
) -> web.Response:
    shown = await check_in_code(principal=principal, center_id=path.center_id,
                                clock=request.app[CLOCK])
    return json(CheckInCodeOut(code=shown.code, valid_for_seconds=shown.valid_for_seconds))


@api.route("POST", "/api/v1/reservations/{reservation_id}/check-in", tag="attendance",
           summary="Check in with the code the center shows, from 30 minutes before the "
                   "start to 30 after; 400 invalid_code, 409 check_in_closed or "
                   "already_checked_in",
           path_params=ReservationPath, body=CheckInBody, auth=True,
           responses={200: CheckedInOut}, errors=(400, 401, 404, 409))
async def check_in_at_the_door(
    request: web.Request, *, path: ReservationPath, body: CheckInBody, principal: Principal
) -> web.Response:
    await check_in(principal=principal, reservation_id=path.reservation_id, code=body.code,
                   clock=request.app[CLOCK])
    return json(CheckedInOut())


@api.route("GET", "/api/v1/timeslots/{timeslot_id}/attendance", tag="attendance",
           summary="Who booked the session and whether they came (its center's owner)",
           path_params=TimeslotPath, auth=True, responses={200: AttendanceOut},
           errors=(401, 403, 404))
async def get_attendance(
    request: web.Request, *, path: TimeslotPath, principal: Principal
) -> web.Response:
    attendees = await attendance_of(principal=principal, timeslot_id=path.timeslot_id)
    return json(AttendanceOut(items=[
        AttendeeOut(reservation_id=attendee.reservation_id, user_name=attendee.user_name,
                    status=attendee.status.value)
        for attendee in attendees
    ]))
