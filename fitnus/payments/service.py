"""Buying coupons through Kakao Pay.

An order row is written first (its id is Kakao's ``partner_order_id``), then
Kakao's *ready* is called outside any transaction; the browser pays on
Kakao's page and comes back to our approval URL with ``pg_token`` and the
order's callback key. One caller at a time may talk to Kakao about an
order (``approving_since``); it calls *approve* and credits the coupons from
the amount Kakao approved, in the transaction that moves the order out of
``pending`` (a conditional UPDATE), so a repeated or concurrent callback
credits nothing more. After a timeout or a 5xx it looks the payment up
(*order*) and acts on Kakao's status before anything else; a 4xx is never
retried. No call to Kakao happens inside a database transaction."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.clock import Clock
from fitnus.errors import BadGateway, NotFound, Unavailable
from fitnus.payments.bundles import purchase_of
from fitnus.payments.kakaopay import KakaoPay, KakaoPayRefused, KakaoPayUnavailable
from fitnus.payments.models import CouponOrder, OrderStatus
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import post_entry

log = logging.getLogger(__name__)

# Attempts at reaching Kakao about one approval (approve, then lookups).
APPROVAL_ATTEMPTS = 3
# Kakao calls one approval may make at most: a lookup and an approve per
# attempt, a lookup after a refusal, a cancel of a wrong amount.
CALLS_PER_APPROVAL = 2 * APPROVAL_ATTEMPTS + 2
# How long a second callback waits for the first to finish.
SECOND_CALLBACK_WAIT_SECONDS = 10.0
APPROVED_AT_KAKAO = "SUCCESS_PAYMENT"
# Kakao's statuses for a payment the person has authenticated but not yet approved.
AWAITING_APPROVAL = frozenset({"AUTH_PASSWORD"})


UNPAID = frozenset({OrderStatus.CANCELLED, OrderStatus.FAILED})
# Kakao's statuses of a payment that ended without being approved.
ENDED_AT_KAKAO = frozenset({"CANCEL_PAYMENT", "FAIL_AUTH_PASSWORD", "QUIT_PAYMENT",
                            "FAIL_PAYMENT"})
# The reconciliation job asks Kakao about orders pending this long, and
# gives up on those nobody paid for in the second.
LOOK_UP_PENDING_AFTER = timedelta(minutes=15)
ABANDONED_AFTER = timedelta(hours=1)


class PaymentsNotConfigured(Unavailable):
    code = "payments_not_configured"


class PaymentGatewayError(BadGateway):
    """Kakao Pay refused or did not answer; nothing was charged."""

    code = "payment_gateway_error"


@dataclass(frozen=True)
class Started:
    order: CouponOrder
    redirect_url: str


def purchase_reference(order: CouponOrder) -> str:
    """The ledger entry, and the lot, of an order's coupons."""
    return f"purchase:{order.id}"


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def start_purchase(pay: KakaoPay | None, *, principal: Principal,
                         bundle_id: str | None, coupons: int | None, base_url: str,
                         coupon_validity: timedelta, clock: Clock) -> Started:
    if pay is None:
        raise PaymentsNotConfigured("payments are not configured on this server")
    purchase = purchase_of(bundle_id=bundle_id, coupons=coupons)
    key = secrets.token_urlsafe(24)
    order = await CouponOrder.create(
        user_id=principal.user_id, bundle_id=purchase.bundle_id, coupons=purchase.coupons,
        amount_krw=purchase.amount_krw, gateway=pay.generation,
        coupon_validity_days=coupon_validity.days, callback_key_hash=_key_hash(key),
        created_at=clock.now())

    def url(step: str) -> str:
        return f"{base_url}/api/v1/payments/{order.id}/{step}?key={key}"

    try:
        answer = await pay.ready(
            partner_order_id=str(order.id), partner_user_id=str(principal.user_id),
            item_name=f"FitNus 쿠폰 {purchase.coupons}장", quantity=purchase.coupons,
            total_amount=purchase.amount_krw, approval_url=url("approve"),
            cancel_url=url("cancel"), fail_url=url("fail"))
    except (KakaoPayRefused, KakaoPayUnavailable) as error:
        await _end_unpaid(order, OrderStatus.FAILED, now=clock.now(), reason="ready_failed",
                          answer=getattr(error, "answer", None))
        raise PaymentGatewayError("Kakao Pay could not start the payment") from error
    await CouponOrder.filter(id=order.id).update(tid=answer["tid"], gateway_answers=[answer])
    order.tid = answer["tid"]
    return Started(order, answer["next_redirect_pc_url"])


async def order_by_key(order_id: int, key: str) -> CouponOrder:
    """The order a callback URL names, if the caller holds its key; anyone
    else, another person included, gets the same 404 as for no order."""
    order = await CouponOrder.get_or_none(id=order_id)
    if order is None or not hmac.compare_digest(order.callback_key_hash, _key_hash(key)):
        raise NotFound("no such payment", code="payment_not_found")
    return order


async def approve(pay: KakaoPay | None, order: CouponOrder, *, pg_token: str,
                  clock: Clock) -> CouponOrder:
    """The approval callback; a repeat, or one that comes while another is
    at work, credits nothing more and answers the order as it stands."""
    if pay is None:
        raise PaymentsNotConfigured("payments are not configured on this server")
    if order.status is not OrderStatus.PENDING or order.tid is None:
        return order
    now = clock.now()
    if not await _take(pay, order, now=now):
        return await _after_the_other_callback(order.id)
    try:
        await _approve_once(pay, order, pg_token=pg_token, clock=clock)
    finally:
        await _let_go(order, taken_at=now)
    return await CouponOrder.get(id=order.id)


async def _take(pay: KakaoPay, order: CouponOrder, *, now: datetime) -> bool:
    """Whether this caller may talk to Kakao about the order now. One that
    took it and died lets go once it could have made all its calls."""
    claim = timedelta(seconds=pay.config.timeout_seconds * CALLS_PER_APPROVAL)
    return bool(await CouponOrder.filter(
        Q(approving_since__isnull=True) | Q(approving_since__lt=now - claim),
        id=order.id, status=OrderStatus.PENDING,
    ).update(approving_since=now))


async def _let_go(order: CouponOrder, *, taken_at: datetime) -> None:
    await CouponOrder.filter(id=order.id, approving_since=taken_at).update(approving_since=None)


async def _approve_once(pay: KakaoPay, order: CouponOrder, *, pg_token: str,
                        clock: Clock) -> None:
    """Approve; after a timeout or a 5xx, Kakao's own status decides whether
    to credit, approve again, or give up. A refusal is never retried."""
    assert order.tid is not None
    tid = order.tid

    async def approve_at_kakao() -> dict[str, Any]:
        return await pay.approve(tid=tid, partner_order_id=str(order.id),
                                 partner_user_id=str(order.user_id),  # type: ignore[attr-defined]
                                 pg_token=pg_token, total_amount=order.amount_krw)

    for attempt in range(1, APPROVAL_ATTEMPTS + 1):
        try:
            if attempt > 1:
                payment = await pay.order(tid=tid)
                if payment.get("status") == APPROVED_AT_KAKAO:
                    await _credit(pay, order, payment, clock=clock)
                    return
                if payment.get("status") not in AWAITING_APPROVAL:
                    await _end_unpaid(order, OrderStatus.FAILED, now=clock.now(),
                                      reason=f"kakao_{payment.get('status')}".lower(),
                                      answer=payment)
                    return
            await _credit(pay, order, await approve_at_kakao(), clock=clock)
            return
        except KakaoPayUnavailable:
            log.warning("order %s: Kakao Pay did not answer (attempt %s)", order.id, attempt)
        except KakaoPayRefused as refused:
            await _refused(pay, order, refused, clock=clock)
            return
    log.error("order %s: Kakao Pay unreachable; left pending for the next callback", order.id)


async def _refused(pay: KakaoPay, order: CouponOrder, refused: KakaoPayRefused, *,
                   clock: Clock) -> None:
    """Not retried. A refusal may still follow an approve that went through
    (a caller that died mid-approval): Kakao's status says whether it did."""
    assert order.tid is not None
    try:
        payment = await pay.order(tid=order.tid)
    except (KakaoPayRefused, KakaoPayUnavailable):
        log.error("order %s: approve refused and the lookup failed; left pending", order.id)
        return
    if payment.get("status") == APPROVED_AT_KAKAO:
        try:
            await _credit(pay, order, payment, clock=clock)
        except (KakaoPayRefused, KakaoPayUnavailable):
            log.error("order %s: paying back a wrong amount failed; left pending", order.id)
    else:
        await _end_unpaid(order, OrderStatus.FAILED, now=clock.now(), reason="approve_refused",
                          answer=refused.answer)


async def _credit(pay: KakaoPay, order: CouponOrder, answer: dict[str, Any], *,
                  clock: Clock) -> None:
    """The coupons Kakao's approved amount paid for, in the transaction that
    approves the order; an amount other than the order's is paid back."""
    approved = int(answer["amount"]["total"])
    now = clock.now()
    if approved != order.amount_krw:
        # Paid back first: the order only fails once the money is back (a
        # cancel that fails leaves it pending, for the next attempt).
        await _pay_back(pay, order, approved)
        await _end_unpaid(order, OrderStatus.FAILED, now=now, reason="amount_mismatch",
                          answer=answer)
        return
    async with in_transaction():
        approved_now = await CouponOrder.filter(id=order.id, status=OrderStatus.PENDING).update(
            status=OrderStatus.APPROVED, aid=answer.get("aid"), approved_krw=approved,
            approved_at=now, gateway_answers=[*order.gateway_answers, answer])
        if approved_now:
            await post_entry(user_id=order.user_id,  # type: ignore[attr-defined]
                             kind=LedgerKind.PURCHASE, amount=order.coupons,
                             reference=purchase_reference(order), now=now,
                             expires_at=now + timedelta(days=order.coupon_validity_days))
    if not approved_now and (await CouponOrder.get(id=order.id)).status in UNPAID:
        # Kakao took the money for an order that ended without coupons
        # meanwhile: it goes back.
        log.error("order %s: approved at Kakao after it ended; paying it back", order.id)
        await _pay_back(pay, order, approved)


async def _pay_back(pay: KakaoPay, order: CouponOrder, amount: int) -> None:
    assert order.tid is not None
    await pay.cancel(tid=order.tid, cancel_amount=amount, cancel_available_amount=amount)


async def _end_unpaid(order: CouponOrder, status: OrderStatus, *, now: datetime,
                      reason: str | None, answer: dict[str, Any] | None) -> bool:
    """Out of ``pending`` without coupons (cancelled, failed); whether it was
    still pending."""
    answers = order.gateway_answers + ([answer] if answer else [])
    return bool(await CouponOrder.filter(id=order.id, status=OrderStatus.PENDING).update(
        status=status, failure_reason=reason, ended_at=now, gateway_answers=answers))


async def _after_the_other_callback(order_id: int) -> CouponOrder:
    deadline = asyncio.get_running_loop().time() + SECOND_CALLBACK_WAIT_SECONDS
    while True:
        order = await CouponOrder.get(id=order_id)
        if (order.approving_since is None or order.status is not OrderStatus.PENDING
                or asyncio.get_running_loop().time() > deadline):
            return order
        await asyncio.sleep(0.1)


async def reconcile_pending(pay: KakaoPay, *, clock: Clock) -> int:
    """Orders still pending a while after they started: their callback's
    attempts all failed, or its process died after Kakao approved, and
    Kakao will not call again. Kakao's status decides: approved is credited,
    ended is ended, and an order nobody paid for in an hour is abandoned.
    Returns how many orders it settled."""
    now = clock.now()
    settled = 0
    for order in await CouponOrder.filter(status=OrderStatus.PENDING, tid__isnull=False,
                                          created_at__lt=now - LOOK_UP_PENDING_AFTER):
        if not await _take(pay, order, now=now):
            continue
        try:
            payment = await pay.order(tid=order.tid or "")
            status = str(payment.get("status"))
            if status == APPROVED_AT_KAKAO:
                await _credit(pay, order, payment, clock=clock)
            elif status in ENDED_AT_KAKAO or order.created_at < now - ABANDONED_AFTER:
                await _end_unpaid(order, OrderStatus.FAILED, now=now,
                                  reason=f"kakao_{status}".lower(), answer=payment)
        except (KakaoPayRefused, KakaoPayUnavailable) as error:
            log.warning("order %s: reconciliation could not reach Kakao: %s", order.id, error)
        finally:
            await _let_go(order, taken_at=now)
        settled += (await CouponOrder.get(id=order.id)).status is not OrderStatus.PENDING
    return settled


async def end_by_redirect(order: CouponOrder, status: OrderStatus, *,
                          clock: Clock) -> CouponOrder:
    """Kakao sent the browser to the cancel or fail URL. An approval at work
    on the order decides it instead."""
    current = await _after_the_other_callback(order.id)
    if current.approving_since is None:
        await _end_unpaid(current, status, now=clock.now(), reason=status.value, answer=None)
    return await CouponOrder.get(id=order.id)


async def payment_for(principal: Principal, order_id: int) -> CouponOrder:
    order = await CouponOrder.get_or_none(id=order_id)
    if order is None or (principal.role is not Role.ADMIN
                         and order.user_id != principal.user_id):  # type: ignore[attr-defined]
        raise NotFound("no such payment", code="payment_not_found")
    return order


async def payments_of(user_id: int, *, limit: int = 100) -> list[CouponOrder]:
    return await CouponOrder.filter(user_id=user_id).order_by("-id").limit(limit)
