"""The wallet page in a real browser: buy a bundle through the local Kakao Pay
(tests/fakes/kakaopay.py) and come back to see the coupons; give back unused
coupons of a purchase and see what was refunded, or why not, in words."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect
from tortoise.transactions import in_transaction

from fitnus.clock import system_clock
from fitnus.payments.models import CouponOrder
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import post_entry
from tests.browser import base_url, check_page, phone, sign_in
from tests.e2e.shop import buy, come_back, last_order_id, open_shop, pay_on_kakao, reconciled

Client = TestClient[Any, Any]
NAME = "김지갑"


async def signed_in_wallet(page: Page, person: Any) -> None:
    """Signs in as a person would, then opens 지갑 from the menu."""
    await sign_in(page, person.email, NAME)
    await page.get_by_role("navigation", name="주 메뉴").get_by_role("link", name="지갑").click()
    await expect(page.get_by_role("heading", name="지갑", exact=True)).to_be_visible()


async def wallet_of(client: Client, person: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/me/wallet", headers=person.headers)
    assert response.status == 200, await response.text()
    wallet: dict[str, Any] = await response.json()
    return wallet


async def test_buy_a_bundle_through_kakao_pay_and_see_the_coupons(
    aiohttp_client: Any, make_app: Any, kakao_server: Any, sign_up: Any, browser: Browser,
) -> None:
    before = await last_order_id()
    shop = await open_shop(aiohttp_client, make_app, kakao_server, "open-api")
    person = await sign_up(name=NAME)
    context = await phone(browser, base_url(shop.client))
    page = await context.new_page()
    try:
        await signed_in_wallet(page, person)
        summary = page.get_by_role("region", name="사용 가능")
        await expect(summary).to_contain_text("쿠폰 0장")
        await expect(page.get_by_text("아직 결제한 적이 없어요.")).to_be_visible()

        await page.get_by_role("radio", name=re.compile("쿠폰 220장")).check()
        await expect(page.get_by_text("200,000원 (쿠폰 220장)")).to_be_visible()
        # To Kakao Pay's page (the fake approves at once) and back through our approve URL.
        await page.get_by_role("button", name="카카오페이로 결제").click()

        await expect(page.get_by_role("heading", name="결제 완료")).to_be_visible()
        await expect(page.get_by_text("쿠폰 220장이 지갑에 들어왔어요.")).to_be_visible()
        assert re.search(r"/payments/\d+\?key=", page.url), page.url
        await check_page(page, "payment-result")

        await page.get_by_role("link", name="지갑으로 돌아가기").click()
        await expect(summary).to_contain_text("쿠폰 220장")
        newest = page.get_by_role("list", name="쿠폰 내역").get_by_role("listitem").first
        await expect(newest).to_contain_text("쿠폰 구매")
        await expect(newest).to_contain_text("+220장")
        payments = page.get_by_role("list", name="결제 내역")
        await expect(payments).to_contain_text("쿠폰 220장 · 200,000원")
        await expect(payments).to_contain_text("결제 완료")
        await expect(page.get_by_role("list", name="유효기간별 쿠폰")).to_contain_text("쿠폰 220장")
        await check_page(page, "wallet")
    finally:
        await context.close()

    wallet = await wallet_of(shop.client, person)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (220, 0, 220)
    assert [lot["coupons_left"] for lot in wallet["lots"]] == [220]
    [order] = await CouponOrder.filter(user_id=person.id)
    assert (order.status.value, order.coupons, order.amount_krw) == ("approved", 220, 200_000)
    assert await reconciled(shop.kakao, after=before) == []


async def test_refund_unused_coupons_from_the_wallet(
    aiohttp_client: Any, make_app: Any, kakao_server: Any, sign_up: Any, browser: Browser,
) -> None:
    before = await last_order_id()
    shop = await open_shop(aiohttp_client, make_app, kakao_server, "open-api")
    person = await sign_up(name=NAME)
    started = await buy(shop, person, bundle_id="220")
    await come_back(shop, await pay_on_kakao(shop, started))
    context = await phone(browser, base_url(shop.client))
    page = await context.new_page()
    summary = page.get_by_role("region", name="사용 가능")
    dialog = page.get_by_role("dialog")
    refund = page.get_by_role("button", name="환불", exact=True)
    try:
        await signed_in_wallet(page, person)
        await expect(summary).to_contain_text("쿠폰 220장")

        await refund.click()
        await dialog.get_by_label("환불할 쿠폰 수").fill("20")
        # What comes back shows before the person confirms: 200,000 × 20 ÷ 220, rounded down.
        await expect(dialog).to_contain_text("쿠폰 20장을 돌려드리고 18,181원을 환불해요.")
        await check_page(page, "wallet-refund")
        await dialog.get_by_role("button", name="환불하기").click()
        await expect(page.get_by_role("status").filter(
            has_text="18,181원을 환불했어요. 쿠폰 20장이 지갑에서 빠졌어요.")).to_be_visible()
        await expect(summary).to_contain_text("쿠폰 200장")
        newest = page.get_by_role("list", name="쿠폰 내역").get_by_role("listitem").first
        await expect(newest).to_contain_text("구매 환불")
        await expect(newest).to_contain_text("−20장")
        await expect(page.get_by_role("list", name="결제 내역")).to_contain_text(
            "환불 18,181원 (쿠폰 20장)")

        # Ten of the purchase's coupons spent meanwhile: the rest cannot all come back.
        async with in_transaction():
            await post_entry(user_id=person.id, kind=LedgerKind.BOOKING_DEBIT, amount=-10,
                             reference=f"seat:{person.id}", now=system_clock.now())
        await refund.click()
        await expect(dialog.get_by_label("환불할 쿠폰 수")).to_have_value("200")
        await dialog.get_by_role("button", name="환불하기").click()
        await expect(page.get_by_role("status").filter(
            has_text="이미 사용했거나 사용 대기 중인 쿠폰은 환불할 수 없어요.")).to_be_visible()
        await expect(summary).to_contain_text("쿠폰 190장")

        # A week after the purchase, the buyer's refunds are over.
        await CouponOrder.filter(id=started["id"]).update(
            approved_at=system_clock.now() - timedelta(days=7, minutes=1))
        await refund.click()
        await dialog.get_by_label("환불할 쿠폰 수").fill("1")
        await dialog.get_by_role("button", name="환불하기").click()
        await expect(page.get_by_role("status").filter(
            has_text="결제 후 7일이 지나 환불할 수 없어요.")).to_be_visible()
        await expect(refund).to_have_count(0)
    finally:
        await context.close()

    wallet = await wallet_of(shop.client, person)
    assert (wallet["balance"], wallet["available"]) == (190, 190)
    payment = await (await shop.client.get(f"/api/v1/payments/{started['id']}",
                                           headers=person.headers)).json()
    assert (payment["status"], payment["refunded_coupons"], payment["refunded_krw"]) == (
        "partially_refunded", 20, 18_181)
    assert await reconciled(shop.kakao, after=before) == []


async def test_without_kakao_pay_the_purchase_says_so_in_words(
    client: Client, sign_up: Any, browser: Browser,
) -> None:
    person = await sign_up(name=NAME)
    context = await phone(browser, base_url(client))
    page = await context.new_page()
    try:
        await signed_in_wallet(page, person)
        await page.get_by_role("radio", name=re.compile("직접 입력")).check()
        count = page.get_by_label("구매할 쿠폰 수")
        pay = page.get_by_role("button", name="카카오페이로 결제")
        await count.fill("0")
        await expect(pay).to_be_disabled()
        await expect(page.get_by_text("구매할 쿠폰 수를 1~1,000장 사이로 입력해 주세요.")
                     ).to_be_visible()
        await count.fill("5")
        await expect(page.get_by_text("5,000원 (쿠폰 5장)")).to_be_visible()
        await pay.click()
        await expect(page.get_by_text("지금은 결제할 수 없어요. 잠시 후 다시 시도해 주세요.")
                     ).to_be_visible()
        await expect(pay).to_be_enabled()
    finally:
        await context.close()
    assert await CouponOrder.filter(user_id=person.id).count() == 0
