"""A shop: the app pointed at the local Kakao Pay (tests/fakes/kakaopay.py),
and the checks that Kakao's ledger and ours agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient
from tortoise.functions import Sum

from fitnus.payments.models import CouponOrder, CouponRefund, OrderStatus, RefundStatus
from fitnus.payments.refunds import refund_reference
from fitnus.payments.service import purchase_reference
from fitnus.wallet.models import LedgerEntry
from tests.fakes.kakaopay import ADMIN_KEY, SECRET_KEY, FakeKakaoPay

Client = TestClient[Any, Any]
PAID = (OrderStatus.APPROVED, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


@dataclass
class Shop:
    client: Client
    kakao: FakeKakaoPay


async def last_order_id() -> int:
    last = await CouponOrder.all().order_by("-id").first()
    return 0 if last is None else last.id


async def reconciled(kakao: FakeKakaoPay, *, after: int) -> list[str]:
    """Per order since ``after``: what Kakao took less what it gave back is
    what our order says, the coupons credited less those refunded are its
    ledger's, and no refund is left holding coupons."""
    wrong = []
    for order in await CouponOrder.filter(id__gt=after):
        payment = kakao.by_order(str(order.id))
        kakao_net = 0 if payment is None else payment.approved_amount - payment.canceled_amount
        our_net = (order.approved_krw or 0) - order.refunded_krw
        refunds = await CouponRefund.filter(order_id=order.id)
        ledger = await LedgerEntry.filter(
            reference__in=[purchase_reference(order), *map(refund_reference, refunds)],
        ).annotate(total=Sum("amount")).first().values("total")
        credited = (ledger or {}).get("total") or 0
        expected = order.coupons - order.refunded_coupons if order.status in PAID else 0
        pending = [refund.id for refund in refunds if refund.status is RefundStatus.PENDING]
        if kakao_net != our_net or credited != expected or pending:
            wrong.append(f"order {order.id}: kakao {kakao_net} / ours {our_net}, "
                         f"credited {credited} / {expected}, refunds pending {pending}")
    return wrong


# Short, so that the timeout tests (Kakao answering after TIMED_OUT_SECONDS)
# run fast; not so short that a busy test process times out an ordinary call
# (seen once at 1 s: a purchase's ready answered, and given up on).
KAKAO_TIMEOUT_SECONDS = 2
TIMED_OUT_SECONDS = 3.0


async def open_shop(aiohttp_client: Any, make_app: Any, kakao_server: Any,
                    generation: str, **overrides: Any) -> Shop:
    kakao, url = kakao_server
    client = await aiohttp_client(make_app(**{
        "kakaopay_api": generation, "kakaopay_base_url": url, "kakaopay_secret_key": SECRET_KEY,
        "kakaopay_admin_key": ADMIN_KEY, "kakaopay_timeout_seconds": KAKAO_TIMEOUT_SECONDS,
        **overrides}))
    return Shop(client, kakao)


async def buy(shop: Shop, person: Any, **body: Any) -> dict[str, Any]:
    response = await shop.client.post("/api/v1/payments", json=body, headers=person.headers)
    assert response.status == 201, await response.text()
    started: dict[str, Any] = await response.json()
    return started


async def pay_on_kakao(shop: Shop, started: dict[str, Any], outcome: str = "approve") -> str:
    """The person's browser on Kakao's page; where Kakao sends it next (our URL)."""
    async with ClientSession() as browser:
        page = await browser.get(started["redirect_url"],
                                 params={"outcome": outcome}, allow_redirects=False)
        assert page.status == 302, await page.text()
        location = page.headers["Location"]
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


async def come_back(shop: Shop, callback: str) -> web.Response:
    """Kakao's redirect reaching us; answers 303 to the result page."""
    response = await shop.client.get(callback, allow_redirects=False)
    assert response.status == 303, await response.text()
    return response  # type: ignore[return-value]
