"""Refunds of unused coupons through Kakao Pay's cancel, against the local
fake: the order's own price per coupon, once whatever arrives together, and
nothing changed when Kakao refuses. The ``shop`` fixture checks Kakao's
ledger against ours after every test."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from fitnus.clock import ManualClock, system_clock
from fitnus.payments import refunds
from fitnus.payments.kakaopay import KakaoPay
from fitnus.payments.models import CouponOrder, OrderStatus
from fitnus.wallet.models import CouponLot, LedgerKind, Wallet
from fitnus.wallet.service import post_entry
from tests.e2e.shop import (
    TIMED_OUT_SECONDS,
    Shop,
    buy,
    come_back,
    pay_on_kakao,
)
from tests.e2e.test_booking_races import ledgers_agree
from tests.e2e.test_centers import admin_headers
from web.keys import KAKAO_PAY

STORM = 10


async def bought(shop: Shop, person: Any, **body: Any) -> int:
    started = await buy(shop, person, **body)
    await come_back(shop, await pay_on_kakao(shop, started))
    order_id: int = started["id"]
    return order_id


async def ask_refund(shop: Shop, headers: dict[str, str], order_id: int, coupons: Any) -> Any:
    return await shop.client.post(f"/api/v1/payments/{order_id}/refund",
                                  json={"coupons": coupons}, headers=headers)


async def refunded(shop: Shop, person: Any, order_id: int, coupons: int) -> dict[str, Any]:
    response = await ask_refund(shop, person.headers, order_id, coupons)
    assert response.status == 200, await response.text()
    payment: dict[str, Any] = await response.json()
    return payment


async def refused(response: Any, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert (await response.json())["code"] == code


async def kakao_pay(shop: Shop) -> KakaoPay:
    pay = shop.client.app[KAKAO_PAY]
    assert isinstance(pay, KakaoPay)
    return pay


def in_20_minutes() -> ManualClock:
    """When the reconciliation job takes Kakao's record as final."""
    return ManualClock(system_clock.now() + timedelta(minutes=20))


async def wallet_and_lot(person: Any, order_id: int) -> tuple[int, int, int]:
    wallet = await Wallet.get(user_id=person.id)
    lot = await CouponLot.get(reference=f"purchase:{order_id}")
    return wallet.balance, wallet.held, lot.remaining


async def test_unused_coupons_of_a_bundle_come_back_at_its_own_price(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, bundle_id="220")
    payment = await refunded(shop, person, order_id, 100)
    # 200,000 KRW for 220 coupons: 100 of them are 90,909.09 KRW, rounded down.
    assert (payment["status"], payment["refunded_krw"], payment["refunded_coupons"]) == (
        "partially_refunded", 90_909, 100)
    assert await wallet_and_lot(person, order_id) == (120, 0, 120)
    # The rest brings the whole amount back, not 2 x a rounded-down part.
    payment = await refunded(shop, person, order_id, 120)
    assert (payment["status"], payment["refunded_krw"]) == ("refunded", 200_000)
    assert shop.kakao.payments[(await CouponOrder.get(id=order_id)).tid or ""].status == (
        "CANCEL_PAYMENT")
    assert await wallet_and_lot(person, order_id) == (0, 0, 0)
    await refused(await ask_refund(shop, person.headers, order_id, 1), 409,
                  "payment_not_refundable")
    assert await ledgers_agree([person.id]) == []


async def test_a_refund_retried_with_its_idempotency_key_is_made_once(
    shop: Shop, sign_up: Any,
) -> None:
    person, other = await sign_up(), await sign_up()
    order_id = await bought(shop, person, coupons=50)
    retried = {**person.headers, "Idempotency-Key": "refund-1"}
    first = await ask_refund(shop, retried, order_id, 10)
    again = await ask_refund(shop, retried, order_id, 10)  # the answer was lost
    assert (first.status, again.status) == (200, 200)
    assert await again.json() == await first.json()
    assert (await first.json())["refunded_coupons"] == 10
    assert (await CouponOrder.get(id=order_id)).refunded_coupons == 10
    # Another key is another refund; the same key on another payment is its own.
    assert (await refunded(shop, person, order_id, 5))["refunded_coupons"] == 15
    second_order = await bought(shop, person, coupons=20)
    assert (await ask_refund(shop, retried, second_order, 10)).status == 200
    assert (await CouponOrder.get(id=second_order)).refunded_coupons == 10
    await refused(await ask_refund(shop, {**other.headers, "Idempotency-Key": "refund-1"},
                                   order_id, 10), 404, "payment_not_found")
    assert await ledgers_agree([person.id]) == []


async def test_every_coupon_of_an_unused_order_cancels_the_whole_amount(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, bundle_id="345")
    payment = await refunded(shop, person, order_id, 345)
    assert (payment["status"], payment["refunded_krw"]) == ("refunded", 300_000)
    assert (await Wallet.get(user_id=person.id)).balance == 0


async def test_only_unspent_coupons_of_that_purchase_come_back(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, coupons=17)
    now = system_clock.now()
    async with in_transaction():
        # Coupons of a lot that lasts longer: spending takes the purchase's first.
        await post_entry(user_id=person.id, kind=LedgerKind.GRANT, amount=50,
                         reference=f"gift:{person.id}", now=now,
                         expires_at=now + timedelta(days=900))
        await post_entry(user_id=person.id, kind=LedgerKind.BOOKING_DEBIT, amount=-10,
                         reference=f"seat:{person.id}", now=now)
    await refused(await ask_refund(shop, person.headers, order_id, 8), 409,
                  "coupons_already_used")
    payment = await refunded(shop, person, order_id, 7)
    assert payment["refunded_krw"] == 7_000
    assert await wallet_and_lot(person, order_id) == (50, 0, 0)
    assert await ledgers_agree([person.id]) == []


async def test_refunds_are_for_a_week_to_the_buyer_and_any_time_to_an_admin(
    shop: Shop, sign_up: Any, settings: Any,
) -> None:
    person, stranger = await sign_up(), await sign_up()
    order_id = await bought(shop, person, coupons=20)
    await refused(await ask_refund(shop, stranger.headers, order_id, 1), 404,
                  "payment_not_found")
    await CouponOrder.filter(id=order_id).update(
        approved_at=system_clock.now() - timedelta(days=7, minutes=1))
    await refused(await ask_refund(shop, person.headers, order_id, 5), 409,
                  "refund_window_closed")
    admin = await admin_headers(shop.client, settings)
    response = await ask_refund(shop, admin, order_id, 5)
    assert response.status == 200, await response.text()
    assert (await response.json())["refunded_krw"] == 5_000


@pytest.mark.parametrize("coupons", [0, -3, 1_001, "5", 2.5, None])
async def test_a_refund_of_no_sensible_number_is_400(
    shop: Shop, sign_up: Any, coupons: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, coupons=3)
    response = await ask_refund(shop, person.headers, order_id, coupons)
    assert response.status == 400, await response.text()
    malformed = await shop.client.post(f"/api/v1/payments/{order_id}/refund", data="{",
                                       headers={**person.headers,
                                                "Content-Type": "application/json"})
    assert malformed.status == 400
    assert (await Wallet.get(user_id=person.id)).balance == 3


async def test_a_refund_kakao_declines_changes_nothing(shop: Shop, sign_up: Any) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, coupons=12)
    shop.kakao.fail_next("cancel", "decline")
    await refused(await ask_refund(shop, person.headers, order_id, 4), 502,
                  "payment_gateway_error")
    assert await wallet_and_lot(person, order_id) == (12, 0, 12)
    order = await CouponOrder.get(id=order_id)
    assert (order.status, order.refunded_krw, order.refunding_since) == (
        OrderStatus.APPROVED, 0, None)
    # Nothing stuck: the next refund goes through.
    assert (await refunded(shop, person, order_id, 4))["refunded_krw"] == 4_000


async def test_a_cancel_that_got_a_5xx_waits_for_kakaos_final_word(
    shop: Shop, sign_up: Any,
) -> None:
    """Kakao does not show it: it may still be under way there, so the
    coupons stay held until the reconciliation job asks again."""
    person = await sign_up()
    order_id = await bought(shop, person, coupons=12)
    shop.kakao.fail_next("cancel", "5xx")
    await refused(await ask_refund(shop, person.headers, order_id, 4), 502,
                  "payment_gateway_error")
    assert await wallet_and_lot(person, order_id) == (12, 4, 8)
    await refused(await ask_refund(shop, person.headers, order_id, 1), 409,
                  "refund_in_progress")
    assert await refunds.settle_pending(await kakao_pay(shop), clock=in_20_minutes()) == 1
    assert await wallet_and_lot(person, order_id) == (12, 0, 12)
    assert (await CouponOrder.get(id=order_id)).refunded_krw == 0
    assert (await refunded(shop, person, order_id, 4))["refunded_krw"] == 4_000


async def test_a_purchase_from_before_lots_has_no_coupons_of_its_own_to_refund(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, coupons=6)
    # As migration 0017 left it: its coupons in the person's one lot.
    await CouponLot.filter(reference=f"purchase:{order_id}").update(
        reference=f"migration:{person.id}")
    await refused(await ask_refund(shop, person.headers, order_id, 1), 409,
                  "coupons_already_used")
    assert (await CouponOrder.get(id=order_id)).refunding_since is None


async def test_a_cancel_that_timed_out_is_looked_up_and_counted_once(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, coupons=30)
    shop.kakao.fail_next("cancel", "timeout", delay_seconds=TIMED_OUT_SECONDS)
    payment = await refunded(shop, person, order_id, 10)
    assert payment["refunded_krw"] == 10_000
    assert (shop.kakao.calls_to("cancel"), shop.kakao.calls_to("order")) == (1, 1)
    assert await wallet_and_lot(person, order_id) == (20, 0, 20)


async def test_a_refund_left_pending_is_settled_by_the_reconciliation_job(
    shop: Shop, sign_up: Any,
) -> None:
    """The cancel timed out and the lookup failed too: the coupons stay held
    until the job asks Kakao."""
    person = await sign_up()
    order_id = await bought(shop, person, coupons=30)
    shop.kakao.fail_next("cancel", "timeout", delay_seconds=TIMED_OUT_SECONDS)
    shop.kakao.fail_next("order", "5xx")
    await refused(await ask_refund(shop, person.headers, order_id, 10), 502,
                  "payment_gateway_error")
    assert await wallet_and_lot(person, order_id) == (30, 10, 20)
    await refused(await ask_refund(shop, person.headers, order_id, 1), 409,
                  "refund_in_progress")
    pay, later = await kakao_pay(shop), in_20_minutes()
    assert await refunds.settle_pending(pay, clock=later) == 1
    assert await refunds.settle_pending(pay, clock=later) == 0
    assert await wallet_and_lot(person, order_id) == (20, 0, 20)
    assert (await CouponOrder.get(id=order_id)).refunded_krw == 10_000


async def refund_storm(shop: Shop, person: Any, order_id: int) -> list[int]:
    """``STORM`` refunds of 100 coupons of one order at once, while Kakao
    takes half a second over the first; their statuses."""
    shop.kakao.fail_next("cancel", "timeout", delay_seconds=0.5)
    answers = await asyncio.gather(*(ask_refund(shop, person.headers, order_id, 100)
                                     for _ in range(STORM)))
    return sorted(answer.status for answer in answers)


async def test_refunds_at_once_one_wins_and_money_moves_once(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    order_id = await bought(shop, person, bundle_id="220")
    assert await refund_storm(shop, person, order_id) == [200] + [409] * (STORM - 1)
    order = await CouponOrder.get(id=order_id)
    assert (order.refunded_krw, order.refunded_coupons) == (90_909, 100)
    assert shop.kakao.payments[order.tid or ""].canceled_amount == 90_909
    assert await wallet_and_lot(person, order_id) == (120, 0, 120)


@pytest.mark.control
async def test_control_refunds_without_the_claim_or_kakaos_guard_move_money_twice(
    shop: Shop, sign_up: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guards: one refund of an order talks to Kakao at a time, and
    Kakao's cancel_available_amount. Both off: two refunds asked together
    both go through."""
    async def claim_always(order: CouponOrder, *, now: Any) -> bool:
        return True

    monkeypatch.setattr(refunds, "_claim", claim_always)
    person = await sign_up()
    order_id = await bought(shop, person, bundle_id="220")
    shop.kakao.guard_cancels = False
    statuses = await refund_storm(shop, person, order_id)
    assert statuses.count(200) > 1
