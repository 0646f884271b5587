"""Buying coupons with Kakao Pay: the API, Kakao's browser redirects, and the
web app's result page they end on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from fitnus.accounts.tokens import Principal
from fitnus.commands.idempotency import IdempotencyKeys
from fitnus.payments import refunds, service
from fitnus.payments.bundles import BUNDLES, COUPON_PRICE_KRW, CUSTOM, MAX_CUSTOM_COUPONS
from fitnus.payments.models import CouponOrder, OrderStatus
from web.calendar import public_url
from web.clubs import Id
from web.keys import CLOCK, KAKAO_PAY, KEYS, REDIS, SETTINGS, service_zone
from web.routing import Api
from web.schemas import RequestBody, json
from web.wallet import IdempotencyHeader

api = Api()

# The largest bundle: no purchase has more coupons to give back.
MAX_REFUND_COUPONS = 1_000
CallbackKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class BundleOut(BaseModel):
    id: str
    coupons: int | None = Field(description="null for custom: 1 to 1,000 coupons")
    price_krw: int = Field(description="the bundle's price; for custom, the price of a coupon")


class BundleList(BaseModel):
    items: list[BundleOut]


class PaymentBody(RequestBody):
    bundle_id: Annotated[str, StringConstraints(max_length=16)] | None = None
    coupons: int | None = Field(default=None, ge=1, le=MAX_CUSTOM_COUPONS)


class PaymentOut(BaseModel):
    id: int
    status: Literal["pending", "approved", "cancelled", "failed", "refunded",
                    "partially_refunded"]
    bundle_id: str
    coupons: int
    amount_krw: int
    approved_at: datetime | None
    refunded_krw: int
    refunded_coupons: int


class RefundBody(RequestBody):
    coupons: int = Field(ge=1, le=MAX_REFUND_COUPONS,
                         description="unused coupons of this purchase to give back")


class StartedOut(PaymentOut):
    redirect_url: str = Field(description="Kakao Pay's payment page: send the browser there")


class PaymentList(BaseModel):
    items: list[PaymentOut]


class PaymentPath(BaseModel):
    payment_id: Id


class CallbackQuery(BaseModel):
    key: CallbackKey


class ApprovalQuery(CallbackQuery):
    pg_token: CallbackKey


def payment_out(order: CouponOrder, request: web.Request) -> PaymentOut:
    approved_at = order.approved_at
    return PaymentOut(
        id=order.id, status=order.status.value, bundle_id=order.bundle_id, coupons=order.coupons,
        amount_krw=order.amount_krw, refunded_krw=order.refunded_krw,
        refunded_coupons=order.refunded_coupons,
        approved_at=None if approved_at is None else approved_at.astimezone(
            service_zone(request)))


@api.route("GET", "/api/v1/coupon-bundles", tag="payments",
           summary="What coupons cost: the bundles, and custom quantities at 1,000 KRW each",
           responses={200: BundleList}, errors=())
async def coupon_bundles(request: web.Request) -> web.Response:
    return json(BundleList(items=[
        *(BundleOut(id=bundle.id, coupons=bundle.coupons, price_krw=bundle.price_krw)
          for bundle in BUNDLES),
        BundleOut(id=CUSTOM, coupons=None, price_krw=COUPON_PRICE_KRW)]))


@api.route("POST", "/api/v1/payments", tag="payments",
           summary="Buy coupons: a bundle_id or a number of coupons; the server computes the "
                   "price. 201 with Kakao Pay's page to send the browser to; 503 "
                   "payments_not_configured; 502 payment_gateway_error",
           body=PaymentBody, headers=IdempotencyHeader, auth=True, responses={201: StartedOut},
           errors=(400, 401, 409, 502, 503))
async def start_payment(request: web.Request, *, body: PaymentBody, headers: IdempotencyHeader,
                        principal: Principal) -> web.Response:
    async def start() -> StartedOut:
        started = await service.start_purchase(
            request.app[KAKAO_PAY], principal=principal, bundle_id=body.bundle_id,
            coupons=body.coupons, base_url=public_url(request, ""),
            coupon_validity=request.app[SETTINGS].coupon_validity, clock=request.app[CLOCK])
        out = payment_out(started.order, request)
        return StartedOut(**out.model_dump(), redirect_url=started.redirect_url)

    return await _once_per_key(request, principal, "purchase", headers.idempotency_key,
                               start, status=201)


async def _once_per_key(
    request: web.Request, principal: Principal, action: str, key: str | None,
    answer: Callable[[], Awaitable[BaseModel]], *, status: int = 200,
) -> web.Response:
    """Every copy of a request with one Idempotency-Key gets the first one's
    answer: a purchase or refund retried after a lost answer is not made twice."""
    if key is None:
        return json(await answer(), status)

    async def first() -> dict[str, Any]:
        return (await answer()).model_dump(mode="json")

    body = await IdempotencyKeys(redis=request.app[REDIS], keys=request.app[KEYS]).first_answer(
        user_id=principal.user_id, key=f"{action}:{key}", answer=first)
    return web.json_response(body, status=status)


def _to_result(order: CouponOrder, key: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/payments/{order.id}?key={key}")


@api.route("GET", "/api/v1/payments/{payment_id}/approve", tag="payments",
           summary="Kakao Pay's redirect after the person paid: approves and credits the "
                   "coupons once, then 303 to the result page; a repeat is harmless. The "
                   "key is the order's callback secret, in the URLs we gave Kakao",
           path_params=PaymentPath, query=ApprovalQuery, responses={303: None},
           errors=(400, 404, 503))
async def approve_payment(request: web.Request, *, path: PaymentPath,
                          query: ApprovalQuery) -> web.Response:
    order = await service.order_by_key(path.payment_id, query.key)
    await service.approve(request.app[KAKAO_PAY], order, pg_token=query.pg_token,
                          clock=request.app[CLOCK])
    raise _to_result(order, query.key)


async def _ended_by_redirect(request: web.Request, path: PaymentPath, query: CallbackQuery,
                             status: OrderStatus) -> web.Response:
    order = await service.order_by_key(path.payment_id, query.key)
    await service.end_by_redirect(order, status, clock=request.app[CLOCK])
    raise _to_result(order, query.key)


@api.route("GET", "/api/v1/payments/{payment_id}/cancel", tag="payments",
           summary="Kakao Pay's redirect when the person gave up: the order is cancelled; "
                   "303 to the result page", path_params=PaymentPath, query=CallbackQuery,
           responses={303: None}, errors=(400, 404))
async def cancel_payment(request: web.Request, *, path: PaymentPath,
                         query: CallbackQuery) -> web.Response:
    return await _ended_by_redirect(request, path, query, OrderStatus.CANCELLED)


@api.route("GET", "/api/v1/payments/{payment_id}/fail", tag="payments",
           summary="Kakao Pay's redirect when the payment failed: the order is failed; 303 "
                   "to the result page", path_params=PaymentPath, query=CallbackQuery,
           responses={303: None}, errors=(400, 404))
async def fail_payment(request: web.Request, *, path: PaymentPath,
                       query: CallbackQuery) -> web.Response:
    return await _ended_by_redirect(request, path, query, OrderStatus.FAILED)


@api.route("GET", "/api/v1/payments/{payment_id}", tag="payments",
           summary="A payment: its buyer, admins", path_params=PaymentPath, auth=True,
           responses={200: PaymentOut}, errors=(401, 404))
async def get_payment(request: web.Request, *, path: PaymentPath,
                      principal: Principal) -> web.Response:
    return json(payment_out(await service.payment_for(principal, path.payment_id), request))


@api.route("POST", "/api/v1/payments/{payment_id}/refund", tag="payments",
           summary="Give back unused coupons of a purchase for their money: its buyer within "
                   "7 days, an admin at any time. Each coupon returns the order's own price per "
                   "coupon, rounded down to the won (counted over all its refunds, so refunding "
                   "every coupon returns the whole amount). 409 refund_window_closed, "
                   "coupons_already_used, refund_in_progress (one refund of a payment at a "
                   "time), payment_not_refundable; 502 payment_gateway_error when Kakao Pay "
                   "refused or could not be reached (nothing changed, or the refund settles "
                   "once Kakao answers)",
           path_params=PaymentPath, body=RefundBody, headers=IdempotencyHeader, auth=True,
           responses={200: PaymentOut}, errors=(400, 401, 404, 409, 502, 503))
async def refund_payment(request: web.Request, *, path: PaymentPath, body: RefundBody,
                         headers: IdempotencyHeader, principal: Principal) -> web.Response:
    async def refund() -> PaymentOut:
        order = await refunds.refund(request.app[KAKAO_PAY], principal=principal,
                                     order_id=path.payment_id, coupons=body.coupons,
                                     clock=request.app[CLOCK])
        return payment_out(order, request)

    return await _once_per_key(request, principal, f"refund:{path.payment_id}",
                               headers.idempotency_key, refund)


@api.route("GET", "/api/v1/me/payments", tag="payments",
           summary="Your payments, newest first (the latest 100)", auth=True,
           responses={200: PaymentList}, errors=(401,))
async def my_payments(request: web.Request, *, principal: Principal) -> web.Response:
    return json(PaymentList(items=[payment_out(order, request)
                                   for order in await service.payments_of(principal.user_id)]))


TITLES = {OrderStatus.APPROVED: "결제 완료", OrderStatus.PENDING: "결제 확인 중",
          OrderStatus.CANCELLED: "결제 취소", OrderStatus.FAILED: "결제 실패",
          OrderStatus.PARTIALLY_REFUNDED: "부분 환불", OrderStatus.REFUNDED: "환불 완료"}
# What happened, in the person's words, and whether it went their way.
OUTCOMES = {
    OrderStatus.APPROVED: ("쿠폰 {coupons:,}장이 지갑에 들어왔어요.", "ok"),
    OrderStatus.PENDING: ("카카오페이 결제를 확인하고 있어요. 잠시 후 다시 확인해 주세요.", ""),
    OrderStatus.CANCELLED: ("결제를 취소했어요. 빠져나간 돈은 없어요.", "bad"),
    OrderStatus.FAILED: ("결제하지 못했어요. 빠져나간 돈은 없어요. 지갑에서 다시 시도해 주세요.",
                         "bad"),
    OrderStatus.PARTIALLY_REFUNDED: ("쓰지 않은 쿠폰 일부를 환불했어요.", "ok"),
    OrderStatus.REFUNDED: ("결제 금액을 모두 환불했어요.", "ok"),
}


async def result_page(request: web.Request) -> web.Response:
    """Where the browser lands after Kakao Pay: the order's outcome, for
    whoever holds its callback key (the browser that paid), signed in or not."""
    try:
        order = await service.order_by_key(int(request.match_info["payment_id"]),
                                           request.query.get("key", ""))
    except ValueError:
        raise web.HTTPNotFound() from None
    outcome, tone = OUTCOMES.get(order.status, (order.status.value, ""))
    return aiohttp_jinja2.render_template("payment_result.html", request, {
        "title": TITLES.get(order.status, order.status.value),
        "outcome": outcome.format(coupons=order.coupons), "tone": tone,
        "coupons": order.coupons, "amount_krw": order.amount_krw,
        "refunded_krw": order.refunded_krw, "refunded_coupons": order.refunded_coupons,
        "pending": order.status is OrderStatus.PENDING,
        "again": request.path_qs})
