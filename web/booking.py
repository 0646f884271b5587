from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field

from fitnus.accounts.tokens import Principal
from fitnus.booking.cancelling import refund_quote
from fitnus.booking.models import Reservation
from fitnus.booking.outcomes import Decided
from fitnus.booking.service import (
    SeatRefused,
    SeatRequested,
    request_cancellation,
    request_move,
    request_seat,
    reservation_for,
)
from fitnus.commands.models import CommandStatus
from web.commands import (
    CommandAccepted,
    PreferHeader,
    ReservationAccepted,
    accepted,
    result_within,
)
from web.keys import BOOKING_DESK, CLOCK, OUTCOMES, SETTINGS, service_zone
from web.routing import Api, Link
from web.schemas import RequestBody, json
from web.wallet import IdempotencyHeader

api = Api()


class ReservationBody(RequestBody):
    timeslot_id: int = Field(ge=1, le=2**63 - 1)


class ReservationHeaders(PreferHeader, IdempotencyHeader):
    pass


class ReservationOut(BaseModel):
    id: int
    user_id: int
    timeslot_id: int
    status: Literal["confirmed", "cancelled", "attended", "no_show"]
    price_coupons: int
    created_at: datetime


class ReservationPath(BaseModel):
    reservation_id: int = Field(ge=1, le=2**63 - 1)


def reservation_out(reservation: Reservation, zone: ZoneInfo) -> ReservationOut:
    return ReservationOut(
        id=reservation.id, user_id=reservation.user_id,  # type: ignore[attr-defined]
        timeslot_id=reservation.timeslot_id,  # type: ignore[attr-defined]
        status=reservation.status.value, price_coupons=reservation.price_coupons,
        created_at=reservation.created_at.astimezone(zone),
    )


@api.route("POST", "/api/v1/reservations", tag="booking",
           summary="Ask for a seat: 202 with your place in line, or with Prefer: wait=N "
                   "201/409 once decided",
           body=ReservationBody, headers=ReservationHeaders, auth=True,
           responses={202: ReservationAccepted, 201: ReservationOut},
           errors=(400, 401, 404, 409),
           links=(Link(status=202, operation_id="get_command",
                       parameters={"command_id": "$response.body#/command_id"}),))
async def reserve(
    request: web.Request, *, body: ReservationBody, headers: ReservationHeaders,
    principal: Principal,
) -> web.Response:
    requested = await request_seat(
        request.app[BOOKING_DESK], principal=principal, timeslot_id=body.timeslot_id,
        idempotency_key=headers.idempotency_key,
    )
    return await _answer(request.app, principal, requested, prefer=headers.prefer,
                         decided_status=201)


async def _answer(app: web.Application, principal: Principal, requested: SeatRequested, *,
                  prefer: str | None, decided_status: int) -> web.Response:
    """202 with the place in line; with ``Prefer: wait=N`` the reservation the
    command made, or its refusal, once decided within N seconds."""
    result = await result_within(app, principal, requested, prefer=prefer, refused=SeatRefused)
    if result is None:
        return accepted(requested)
    reservation = await Reservation.get(id=result["reservation_id"])
    return json(reservation_out(reservation, ZoneInfo(app[SETTINGS].time_zone)), decided_status)


@api.route("POST", "/api/v1/reservations/{reservation_id}/move", tag="booking",
           summary="Move your booking to another session: 202 with your place in its line, "
                   "or with Prefer: wait=N 200 the new reservation / 409 once decided. Either "
                   "the new seat is held and the old one freed (the price difference charged "
                   "or refunded), or nothing changed. 409 codes: sold_out, schedule_conflict "
                   "(the booking being moved aside), insufficient_coupons, already_started, "
                   "move_window_closed (once cancelling would no longer refund in full: "
                   "24 h before the old start, or the center's own notice), already_reserved "
                   "(you hold the new one), timeslot_closed, reservation_not_found (moved or "
                   "cancelled meanwhile); 404 for a booking that is not yours or not live",
           path_params=ReservationPath, body=ReservationBody, headers=ReservationHeaders,
           auth=True, responses={202: ReservationAccepted, 200: ReservationOut},
           errors=(400, 401, 404, 409),
           links=(Link(status=202, operation_id="get_command",
                       parameters={"command_id": "$response.body#/command_id"}),))
async def move_reservation(
    request: web.Request, *, path: ReservationPath, body: ReservationBody,
    headers: ReservationHeaders, principal: Principal,
) -> web.Response:
    requested = await request_move(
        request.app[BOOKING_DESK], principal=principal, reservation_id=path.reservation_id,
        timeslot_id=body.timeslot_id, idempotency_key=headers.idempotency_key,
    )
    return await _answer(request.app, principal, requested, prefer=headers.prefer,
                         decided_status=200)


class CancelledOut(BaseModel):
    id: int
    status: Literal["cancelled"] = "cancelled"
    refunded_coupons: int
    refund_reason: str | None = Field(
        description="policy_full, policy_partial, late_no_refund, first_late_cancel_free, "
                    "center_closed; null for a booking cancelled before reasons were kept")


# A cancellation answers synchronously (200) unless its queue is this busy.
CANCEL_WAIT_SECONDS = 10.0


@api.route("DELETE", "/api/v1/reservations/{reservation_id}", tag="booking",
           summary="Cancel your reservation: a full refund 24 h or more before the start, "
                   "none later, 409 after the start",
           path_params=ReservationPath, auth=True,
           responses={200: CancelledOut, 202: CommandAccepted}, errors=(401, 404, 409))
async def cancel_reservation(
    request: web.Request, *, path: ReservationPath, principal: Principal
) -> web.Response:
    app = request.app
    queued = await request_cancellation(
        app[BOOKING_DESK], principal=principal, reservation_id=path.reservation_id,
    )
    if isinstance(queued, Decided):
        command = queued.command
    else:
        command = await app[OUTCOMES].wait(user_id=principal.user_id, command_id=queued,
                                           timeout_seconds=CANCEL_WAIT_SECONDS)
    if command.status is CommandStatus.SUCCEEDED:
        assert command.result is not None
        return json(CancelledOut(id=command.result["reservation_id"],
                                 refunded_coupons=command.result["refunded_coupons"],
                                 refund_reason=command.result.get("refund_reason")))
    if command.status is CommandStatus.FAILED:
        assert command.error is not None
        raise SeatRefused(command.error["detail"], code=command.error["code"])
    return json(CommandAccepted(command_id=str(command.id)), 202)


class RefundQuoteOut(BaseModel):
    refunded_coupons: int
    refund_reason: str = Field(description="policy_full, policy_partial, late_no_refund, "
                                           "first_late_cancel_free")


@api.route("GET", "/api/v1/reservations/{reservation_id}/refund", tag="booking",
           summary="What cancelling your reservation now would refund, to show before "
                   "you confirm; 409 already_started once it has begun",
           path_params=ReservationPath, auth=True, responses={200: RefundQuoteOut},
           errors=(401, 404, 409))
async def quote_refund(request: web.Request, *, path: ReservationPath,
                       principal: Principal) -> web.Response:
    refund = await refund_quote(reservation_id=path.reservation_id, user_id=principal.user_id,
                                now=request.app[CLOCK].now(), zone=service_zone(request))
    return json(RefundQuoteOut(refunded_coupons=refund.coupons, refund_reason=refund.reason))


@api.route("GET", "/api/v1/reservations/{reservation_id}", tag="booking",
           summary="A reservation: its user, the center's owner, admins",
           path_params=ReservationPath, auth=True, responses={200: ReservationOut},
           errors=(401, 404))
async def get_reservation(
    request: web.Request, *, path: ReservationPath, principal: Principal
) -> web.Response:
    reservation = await reservation_for(principal, path.reservation_id)
    return json(reservation_out(reservation, service_zone(request)))

