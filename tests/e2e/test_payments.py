"""Buying coupons through Kakao Pay, both API generations, against the local
fake (tests/fakes/kakaopay.py): exactly once whatever arrives twice, and
Kakao's ledger and ours agree after every test."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from fitnus.clock import ManualClock, system_clock
from fitnus.config import Settings, load_settings
from fitnus.errors import ConfigurationError
from fitnus.payments.models import CouponOrder, OrderStatus
from fitnus.payments.service import APPROVAL_ATTEMPTS, reconcile_pending
from fitnus.wallet.models import Wallet
from tests.e2e.shop import TIMED_OUT_SECONDS, Shop, buy, come_back, open_shop, pay_on_kakao
from tests.fakes.kakaopay import SECRET_KEY
from web.keys import KAKAO_PAY

Client = TestClient[Any, Any]


async def balance(person: Any) -> int:
    return (await Wallet.get(user_id=person.id)).balance


@pytest.mark.parametrize(("body", "coupons", "amount"), [
    ({"bundle_id": "220"}, 220, 200_000),
    ({"bundle_id": "345"}, 345, 300_000),
    ({"coupons": 17}, 17, 17_000),
])
async def test_a_purchase_credits_the_coupons_kakao_approved(
    shop: Shop, sign_up: Any, body: dict[str, Any], coupons: int, amount: int,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, **body)
    assert (started["status"], started["coupons"], started["amount_krw"]) == (
        "pending", coupons, amount)
    back = await come_back(shop, await pay_on_kakao(shop, started))
    result = await shop.client.get(back.headers["Location"])
    assert "결제 완료" in await result.text()
    assert await balance(person) == coupons
    payment = await (await shop.client.get(f"/api/v1/payments/{started['id']}",
                                           headers=person.headers)).json()
    assert payment["status"] == "approved"
    assert payment["approved_at"].endswith("+09:00")
    # A lot that lasts a year from approval (the seed's expired a minute after).
    wallet = await (await shop.client.get("/api/v1/me/wallet", headers=person.headers)).json()
    (lot,) = wallet["lots"]
    lasts = (datetime.fromisoformat(lot["expires_at"])
             - datetime.fromisoformat(payment["approved_at"]))
    assert (lot["coupons_left"], lasts) == (coupons, timedelta(days=365))
    listed = await (await shop.client.get("/api/v1/me/payments", headers=person.headers)).json()
    assert [item["id"] for item in listed["items"]] == [started["id"]]


async def test_a_purchase_retried_with_its_idempotency_key_starts_one_order(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    retried = {**person.headers, "Idempotency-Key": "purchase-1"}
    first = await shop.client.post("/api/v1/payments", json={"coupons": 5}, headers=retried)
    again = await shop.client.post("/api/v1/payments", json={"coupons": 5}, headers=retried)
    assert (first.status, again.status) == (201, 201)
    assert await again.json() == await first.json()
    assert await CouponOrder.filter(user_id=person.id).count() == 1
    other = await shop.client.post("/api/v1/payments", json={"coupons": 5},
                                   headers={**person.headers, "Idempotency-Key": "purchase-2"})
    assert (await other.json())["id"] != (await first.json())["id"]


async def test_the_bundles_are_listed(shop: Shop) -> None:
    bundles = await (await shop.client.get("/api/v1/coupon-bundles")).json()
    assert bundles["items"] == [
        {"id": "220", "coupons": 220, "price_krw": 200_000},
        {"id": "345", "coupons": 345, "price_krw": 300_000},
        {"id": "custom", "coupons": None, "price_krw": 1_000}]


async def test_a_repeated_callback_credits_once(shop: Shop, sign_up: Any) -> None:
    person = await sign_up()
    started = await buy(shop, person, bundle_id="220")
    callback = await pay_on_kakao(shop, started)
    for _ in range(3):
        await come_back(shop, callback)
    assert await balance(person) == 220
    assert shop.kakao.calls_to("approve") == 1


async def test_two_callbacks_at_once_credit_once(shop: Shop, sign_up: Any) -> None:
    person = await sign_up()
    started = await buy(shop, person, coupons=30)
    callback = await pay_on_kakao(shop, started)
    await asyncio.gather(*(come_back(shop, callback) for _ in range(8)))
    assert await balance(person) == 30
    assert shop.kakao.calls_to("approve") == 1


async def test_a_callback_without_the_orders_key_is_refused(shop: Shop, sign_up: Any) -> None:
    person, other = await sign_up(), await sign_up()
    started = await buy(shop, person, coupons=5)
    mine = await buy(shop, other, coupons=5)
    callback = await pay_on_kakao(shop, started)
    token = parse_qs(urlsplit(callback).query)["pg_token"][0]
    other_key = parse_qs(urlsplit(await pay_on_kakao(shop, mine)).query)["key"][0]
    for forged in (f"/api/v1/payments/{started['id']}/approve?key={other_key}&pg_token={token}",
                   f"/api/v1/payments/{started['id']}/approve?key=guess&pg_token={token}"):
        response = await shop.client.get(forged, allow_redirects=False)
        assert response.status == 404
    assert (await shop.client.get(f"/api/v1/payments/{started['id']}",
                                  headers=other.headers)).status == 404
    assert await balance(person) == 0
    assert (await CouponOrder.get(id=started["id"])).status is OrderStatus.PENDING
    await come_back(shop, callback)
    assert await balance(person) == 5


async def test_an_approve_that_timed_out_is_looked_up_and_credited_once(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, bundle_id="345")
    shop.kakao.fail_next("approve", "timeout", delay_seconds=TIMED_OUT_SECONDS)
    await come_back(shop, await pay_on_kakao(shop, started))
    assert await balance(person) == 345
    assert shop.kakao.calls_to("approve") == 1
    assert shop.kakao.calls_to("order") == 1


async def test_an_approve_that_got_a_5xx_is_looked_up_then_approved(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, coupons=12)
    shop.kakao.fail_next("approve", "5xx")
    await come_back(shop, await pay_on_kakao(shop, started))
    assert await balance(person) == 12
    assert (shop.kakao.calls_to("approve"), shop.kakao.calls_to("order")) == (2, 1)


async def test_a_declined_payment_is_not_retried_and_credits_nothing(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, coupons=12)
    shop.kakao.fail_next("approve", "decline")
    back = await come_back(shop, await pay_on_kakao(shop, started))
    assert "결제 실패" in await (await shop.client.get(back.headers["Location"])).text()
    assert shop.kakao.calls_to("approve") == 1
    assert await balance(person) == 0
    assert (await CouponOrder.get(id=started["id"])).status is OrderStatus.FAILED


@pytest.mark.parametrize("outcome", ["cancel", "fail"])
async def test_cancel_and_fail_redirects_end_the_order(
    shop: Shop, sign_up: Any, outcome: str,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, coupons=3)
    await come_back(shop, await pay_on_kakao(shop, started, outcome))
    order = await CouponOrder.get(id=started["id"])
    assert order.status is (OrderStatus.CANCELLED if outcome == "cancel" else OrderStatus.FAILED)
    assert await balance(person) == 0


async def test_the_price_is_the_servers_whatever_the_client_or_kakao_says(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, bundle_id="220", amount_krw=1, price_krw=1, coupons_=999)
    assert started["amount_krw"] == 200_000
    for body in ({"bundle_id": "999"}, {"coupons": 0}, {"coupons": 1001}, {"coupons": "5"},
                 {}, {"bundle_id": "220", "coupons": 5}):
        response = await shop.client.post("/api/v1/payments", json=body,
                                          headers=person.headers)
        assert response.status == 400, (body, await response.text())
    # Kakao holds another amount for the payment than we asked for: the
    # approve carries ours, Kakao refuses it, and nothing is credited.
    shop.kakao.payments[(await CouponOrder.get(id=started["id"])).tid or ""].total_amount = 1_000
    await come_back(shop, await pay_on_kakao(shop, started))
    assert await balance(person) == 0
    assert (await CouponOrder.get(id=started["id"])).status is OrderStatus.FAILED


async def test_without_keys_purchases_are_503(client: Client, sign_up: Any) -> None:
    person = await sign_up()
    response = await client.post("/api/v1/payments", json={"coupons": 1},
                                 headers=person.headers)
    assert response.status == 503
    assert (await response.json())["code"] == "payments_not_configured"


async def test_a_wrong_key_is_refused_by_kakao_and_the_order_failed(
    aiohttp_client: Any, make_app: Any, kakao_server: Any, sign_up: Any,
) -> None:
    shop = await open_shop(aiohttp_client, make_app, kakao_server, "open-api",
                           kakaopay_secret_key="DEV-wrong")
    person = await sign_up()
    response = await shop.client.post("/api/v1/payments", json={"coupons": 1},
                                      headers=person.headers)
    assert response.status == 502
    assert (await response.json())["code"] == "payment_gateway_error"
    [order] = await CouponOrder.filter(user_id=person.id)
    assert order.status is OrderStatus.FAILED


async def test_an_approval_before_the_person_paid_credits_nothing(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, coupons=4)
    payment = shop.kakao.payments[(await CouponOrder.get(id=started["id"])).tid or ""]
    # Our approval URL, as Kakao holds it, called before the person
    # authenticated on Kakao's page: Kakao refuses the approve.
    approval = urlsplit(payment.approval_url)
    await come_back(shop, f"{approval.path}?{approval.query}&pg_token={'0' * 20}")
    assert (await CouponOrder.get(id=started["id"])).status is OrderStatus.FAILED
    assert (shop.kakao.calls_to("approve"), await balance(person)) == (1, 0)


async def test_an_approved_amount_other_than_ours_is_paid_back_not_credited(
    shop: Shop, sign_up: Any,
) -> None:
    person = await sign_up()
    started = await buy(shop, person, coupons=6)
    shop.kakao.overcharge_next = 1_000
    await come_back(shop, await pay_on_kakao(shop, started))
    order = await CouponOrder.get(id=started["id"])
    assert (order.status, order.failure_reason) == (OrderStatus.FAILED, "amount_mismatch")
    payment = shop.kakao.payments[order.tid or ""]
    assert payment.canceled_amount == payment.approved_amount == 7_000
    assert await balance(person) == 0


async def test_an_order_left_pending_is_settled_by_kakaos_status(
    shop: Shop, sign_up: Any,
) -> None:
    """Kakao approved, but every attempt of the callback failed: the order
    stays pending; the reconciliation job asks Kakao and credits it once."""
    person = await sign_up()
    started = await buy(shop, person, coupons=9)
    shop.kakao.fail_next("approve", "timeout", delay_seconds=TIMED_OUT_SECONDS)
    # The approve times out; each lookup after it gets a 5xx.
    for _ in range(APPROVAL_ATTEMPTS - 1):
        shop.kakao.fail_next("order", "5xx")
    await come_back(shop, await pay_on_kakao(shop, started))
    assert (await CouponOrder.get(id=started["id"])).status is OrderStatus.PENDING
    abandoned = await buy(shop, person, coupons=2)
    pay = shop.client.app[KAKAO_PAY]
    assert pay is not None
    soon = ManualClock(system_clock.now() + timedelta(minutes=5))
    assert await reconcile_pending(pay, clock=soon) == 0
    later = ManualClock(system_clock.now() + timedelta(minutes=20))
    assert await reconcile_pending(pay, clock=later) == 1
    assert await reconcile_pending(pay, clock=later) == 0
    assert await balance(person) == 9
    much_later = ManualClock(system_clock.now() + timedelta(hours=2))
    assert await reconcile_pending(pay, clock=much_later) == 1
    assert (await CouponOrder.get(id=abandoned["id"])).status is OrderStatus.FAILED


def test_production_refuses_kakaos_test_merchant(settings: Settings) -> None:
    """The test cid takes no money: a production purchase through it would
    credit coupons for nothing."""
    production = {"FITNUS_ENV": "production", "JWT_SECRET": settings.jwt_secret,
                  "KAKAOPAY_SECRET_KEY": SECRET_KEY}
    with pytest.raises(ConfigurationError, match="KAKAOPAY_CID"):
        load_settings(production)
    assert load_settings({**production, "KAKAOPAY_CID": "CFITNUS01"}).kakaopay is not None
    assert load_settings({"JWT_SECRET": settings.jwt_secret, "KAKAOPAY_SECRET_KEY": SECRET_KEY,
                          }).kakaopay_cid == "TC0ONETIME"
