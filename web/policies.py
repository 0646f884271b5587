"""Cancellation policies, a center's for its bookings and a club's for its
meetup fees: how late a cancellation still earns coupons back."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from fitnus.accounts.tokens import Principal
from fitnus.booking.rules import MAX_POLICY_HOURS, REFUND_WINDOW_HOURS, CancellationPolicy
from fitnus.centers import service
from fitnus.clubs import service as clubs
from web.centers import CenterPath
from web.clubs import ClubPath
from web.keys import CLOCK
from web.routing import Api
from web.schemas import RequestBody, json

api = Api()


class PolicyFields(BaseModel):
    full_refund_hours: int = Field(
        default=REFUND_WINDOW_HOURS, ge=0, le=MAX_POLICY_HOURS,
        description="a cancellation this many hours or more before the start is refunded in full")
    partial_refund_hours: int | None = Field(
        default=None, ge=0, le=MAX_POLICY_HOURS,
        description="under full_refund_hours but this many hours or more before: the partial "
                    "percentage (rounded down); with partial_refund_percent")
    partial_refund_percent: int | None = Field(default=None, ge=1, le=99)


class PolicyBody(RequestBody, PolicyFields):
    pass


class PolicyOut(PolicyFields):
    """A center's cancellation policy, for bookings made from now on. Later than
    any refund window nothing comes back, except each person's first late
    cancellation of a calendar month, refunded in full."""


def policy_of(body: PolicyBody) -> CancellationPolicy:
    return CancellationPolicy(body.full_refund_hours, body.partial_refund_hours,
                              body.partial_refund_percent)


def policy_out(policy: CancellationPolicy) -> PolicyOut:
    return PolicyOut(full_refund_hours=policy.full_refund_hours,
                     partial_refund_hours=policy.partial_refund_hours,
                     partial_refund_percent=policy.partial_refund_percent)


@api.route("PUT", "/api/v1/centers/{center_id}/cancellation-policy", tag="centers",
           summary="Set your center's cancellation policy; it applies to bookings made after "
                   "the change",
           path_params=CenterPath, body=PolicyBody, auth=True, responses={200: PolicyOut},
           errors=(400, 401, 403, 404))
async def set_cancellation_policy(
    request: web.Request, *, path: CenterPath, body: PolicyBody, principal: Principal
) -> web.Response:
    center = await service.set_cancellation_policy(
        principal=principal, center_id=path.center_id, clock=request.app[CLOCK],
        policy=policy_of(body),
    )
    return json(policy_out(center.cancellation_policy))


@api.route("GET", "/api/v1/centers/{center_id}/cancellation-policy", tag="centers",
           summary="A center's cancellation policy", path_params=CenterPath,
           responses={200: PolicyOut}, errors=(404,))
async def get_cancellation_policy(request: web.Request, *, path: CenterPath) -> web.Response:
    center = await service.center_by_id(path.center_id)
    return json(policy_out(center.cancellation_policy))


@api.route("PUT", "/api/v1/clubs/{club_id}/cancellation-policy", tag="clubs",
           summary="Set your club's refund policy for meetup fees paid after the change "
                   "(the leader); no free late leave, unlike a center's bookings",
           path_params=ClubPath, body=PolicyBody, auth=True, responses={200: PolicyOut},
           errors=(400, 401, 403, 404))
async def set_club_policy(
    request: web.Request, *, path: ClubPath, body: PolicyBody, principal: Principal
) -> web.Response:
    club = await clubs.set_refund_policy(principal=principal, club_id=path.club_id,
                                         policy=policy_of(body), clock=request.app[CLOCK])
    return json(policy_out(club.cancellation_policy))


@api.route("GET", "/api/v1/clubs/{club_id}/cancellation-policy", tag="clubs",
           summary="A club's refund policy for meetup fees (default: as a center's)",
           path_params=ClubPath, responses={200: PolicyOut}, errors=(404,))
async def get_club_policy(request: web.Request, *, path: ClubPath) -> web.Response:
    club = await clubs.club_by_id(path.club_id)
    return json(policy_out(club.cancellation_policy))
