"""Unused coupons of a purchase given back for their money.

Three steps, none of them a call to Kakao inside a transaction:

1. Claim the order (``refunding_since``, a conditional UPDATE: one refund at
   a time per order, another meanwhile is 409 ``refund_in_progress``) and
   hold the coupons from the order's own lot, in one transaction under the
   wallet's lock, so they cannot be spent while Kakao is asked.
2. Kakao *cancel*, with ``cancel_available_amount`` as the guard: Kakao
   refuses if what is left to cancel is not what we think.
3. Done: the hold is spent (a ``purchase_refund`` ledger entry) and the
   order counts the refund; refused: the hold goes back and nothing changed.
   After a timeout or a 5xx, Kakao's own record of what it cancelled
   decides: a cancel it shows is done; one it does not show may still be
   under way there, so the refund stays pending (its coupons held) until
   the reconciliation job asks again, a quarter of an hour later, and
   takes Kakao's record as final.

Each refund returns the order's own price per coupon, rounded down to the
won, counted over all its refunds: the n-th refund returns
floor(approved × coupons refunded so far ÷ coupons) less what earlier ones
returned, so refunding every coupon of an order returns its whole amount.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.clock import Clock
from fitnus.errors import Conflict
from fitnus.payments.kakaopay import KakaoPay, KakaoPayRefused, KakaoPayUnavailable
from fitnus.payments.models import CouponOrder, CouponRefund, OrderStatus, RefundStatus
from fitnus.payments.service import (
    PaymentGatewayError,
    PaymentsNotConfigured,
    payment_for,
    purchase_reference,
)
from fitnus.wallet.models import CouponLot, LedgerKind
from fitnus.wallet.service import capture_hold, hold_coupons, lock_wallets, release_hold

log = logging.getLogger(__name__)

REFUND_WINDOW = timedelta(days=7)
REFUNDABLE = (OrderStatus.APPROVED, OrderStatus.PARTIALLY_REFUNDED)
# The reconciliation job asks Kakao about refunds left pending this long.
LOOK_UP_PENDING_AFTER = timedelta(minutes=15)


class RefundWindowClosed(Conflict):
    code = "refund_window_closed"


class CouponsAlreadyUsed(Conflict):
    code = "coupons_already_used"


class RefundInProgress(Conflict):
    code = "refund_in_progress"


class PaymentNotRefundable(Conflict):
    code = "payment_not_refundable"


def refund_krw(order: CouponOrder, coupons: int) -> int:
    """What giving back ``coupons`` more of the order returns, in won."""
    approved = order.approved_krw or 0
    return approved * (order.refunded_coupons + coupons) // order.coupons - order.refunded_krw


def refund_reference(refund: CouponRefund) -> str:
    """Its ledger entry, and what its hold is drawn for."""
    return f"refund:{refund.id}"


async def refund(pay: KakaoPay | None, *, principal: Principal, order_id: int, coupons: int,
                 clock: Clock) -> CouponOrder:
    """Its owner within the window, an admin at any time; unused coupons only."""
    if pay is None:
        raise PaymentsNotConfigured("payments are not configured on this server")
    order = await payment_for(principal, order_id)
    pending = await _hold(order, coupons, principal=principal, now=clock.now())
    if await _ask_kakao(pay, pending, clock=clock) is not RefundStatus.DONE:
        raise PaymentGatewayError("Kakao Pay did not refund; nothing changed")
    return await CouponOrder.get(id=order.id)


async def _hold(order: CouponOrder, coupons: int, *, principal: Principal,
                now: datetime) -> CouponRefund:
    async with in_transaction():
        claimed = await _claim(order, now=now)
        order = await CouponOrder.get(id=order.id)
        if not claimed:
            if order.status not in REFUNDABLE:
                raise PaymentNotRefundable(f"a {order.status.value} payment has nothing to refund")
            raise RefundInProgress("another refund of this payment is under way")
        assert order.approved_at is not None
        if principal.role is not Role.ADMIN and now - order.approved_at > REFUND_WINDOW:
            raise RefundWindowClosed("purchases are refunded within 7 days")
        await lock_wallets([order.user_id], now=now)  # type: ignore[attr-defined]
        lot = await CouponLot.select_for_update().get_or_none(
            reference=purchase_reference(order))
        if lot is None:
            # Bought before coupons came in lots: they were merged with the rest.
            raise CouponsAlreadyUsed("this purchase's coupons cannot be told from the others")
        if lot.remaining < coupons:
            raise CouponsAlreadyUsed(f"{lot.remaining} coupons of this purchase are unused")
        pending = await CouponRefund.create(
            order_id=order.id, requested_by=principal.user_id, coupons=coupons,
            amount_krw=refund_krw(order, coupons), created_at=now)
        if not await hold_coupons(user_id=order.user_id,  # type: ignore[attr-defined]
                                  amount=coupons, held_for=refund_reference(pending), now=now,
                                  lot=lot):
            raise CouponsAlreadyUsed("those coupons are held for something else")
        return pending


async def _claim(order: CouponOrder, *, now: datetime) -> bool:
    """One refund at a time talks to Kakao about an order."""
    return bool(await CouponOrder.filter(
        id=order.id, status__in=REFUNDABLE, refunding_since__isnull=True,
    ).update(refunding_since=now))


async def _ask_kakao(pay: KakaoPay, pending: CouponRefund, *, clock: Clock) -> RefundStatus:
    order = await CouponOrder.get(id=pending.order_id)  # type: ignore[attr-defined]
    assert order.tid is not None
    assert order.approved_krw is not None
    try:
        answer = await pay.cancel(tid=order.tid, cancel_amount=pending.amount_krw,
                                  cancel_available_amount=order.approved_krw - order.refunded_krw)
    except KakaoPayRefused as refused:
        log.warning("refund %s refused by Kakao Pay: %s", pending.id, refused.answer)
        return await _end(pending, RefundStatus.REFUSED, answer=refused.answer, clock=clock)
    except KakaoPayUnavailable:
        log.warning("refund %s: Kakao Pay did not answer; looking it up", pending.id)
        return await settle(pay, pending, final=False, clock=clock)
    return await _end(pending, RefundStatus.DONE, answer=answer, clock=clock)


async def settle(pay: KakaoPay, pending: CouponRefund, *, final: bool,
                 clock: Clock) -> RefundStatus:
    """A refund whose cancel's fate is unknown: Kakao's record of what it
    has cancelled of the payment says whether this one went through. That
    it has not is ``final`` only once the cancel cannot still be under way."""
    order = await CouponOrder.get(id=pending.order_id)  # type: ignore[attr-defined]
    try:
        payment = await pay.order(tid=order.tid or "")
    except (KakaoPayRefused, KakaoPayUnavailable) as error:
        log.error("refund %s left pending: the lookup failed: %s", pending.id, error)
        return RefundStatus.PENDING
    cancelled = int((payment.get("canceled_amount") or {}).get("total") or 0)
    if cancelled == order.refunded_krw + pending.amount_krw:
        return await _end(pending, RefundStatus.DONE, answer=payment, clock=clock)
    if cancelled == order.refunded_krw and final:
        return await _end(pending, RefundStatus.REFUSED, answer=payment, clock=clock)
    if cancelled == order.refunded_krw:
        return RefundStatus.PENDING
    log.error("refund %s left pending: Kakao has cancelled %s of order %s, we count %s",
              pending.id, cancelled, order.id, order.refunded_krw)
    return RefundStatus.PENDING


async def _end(pending: CouponRefund, status: RefundStatus, *, answer: dict[str, Any],
               clock: Clock) -> RefundStatus:
    """Spend or give back the hold, and let go of the order, once."""
    now = clock.now()
    reference = refund_reference(pending)
    async with in_transaction():
        ended = await CouponRefund.filter(id=pending.id, status=RefundStatus.PENDING).update(
            status=status, ended_at=now, gateway_answer=answer)
        if not ended:
            return (await CouponRefund.get(id=pending.id)).status
        order = await CouponOrder.select_for_update().get(
            id=pending.order_id)  # type: ignore[attr-defined]
        user_id: int = order.user_id  # type: ignore[attr-defined]
        changes: dict[str, Any] = {"refunding_since": None,
                                   "gateway_answers": [*order.gateway_answers, answer]}
        if status is RefundStatus.DONE:
            await capture_hold(user_id=user_id, amount=pending.coupons,
                               kind=LedgerKind.PURCHASE_REFUND, reference=reference,
                               held_for=reference, paid_for=reference, now=now)
            refunded = order.refunded_krw + pending.amount_krw
            changes.update(
                refunded_krw=refunded, refunded_coupons=order.refunded_coupons + pending.coupons,
                status=(OrderStatus.REFUNDED if refunded == order.approved_krw
                        else OrderStatus.PARTIALLY_REFUNDED))
        else:
            await lock_wallets([user_id], now=now)
            await release_hold(user_id=user_id, amount=pending.coupons, held_for=reference,
                               now=now)
        await CouponOrder.filter(id=order.id).update(**changes)
    return status


async def settle_pending(pay: KakaoPay, *, clock: Clock) -> int:
    """Refunds left pending a while (Kakao unreachable, or the process died
    between the hold and the answer): Kakao's record settles each. Returns
    how many it settled."""
    settled = 0
    for pending in await CouponRefund.filter(
            status=RefundStatus.PENDING, created_at__lt=clock.now() - LOOK_UP_PENDING_AFTER):
        settled += await settle(pay, pending, final=True,
                                clock=clock) is not RefundStatus.PENDING
    return settled
