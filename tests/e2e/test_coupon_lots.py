"""Coupon lots: spent earliest-expiry first, refunds back to the lot they came
from, expiry by ledger entry, and a week's notice. Each pins a bug of the
seed: coupons expired a minute after purchase, were spent in list order, and
expired lots still counted in the balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from aiohttp.test_utils import TestClient
from tortoise.transactions import in_transaction

from fitnus.clock import ManualClock, system_clock
from fitnus.notifications.models import Notification
from fitnus.wallet.models import CouponLot, LedgerEntry, LedgerKind, Wallet
from fitnus.wallet.service import EXPIRING, expire_lots, notify_expiring, post_entry
from tests.e2e.test_booking import open_session, reserve
from tests.e2e.test_booking_races import ledgers_agree
from tests.e2e.test_centers import admin_headers

Client = TestClient[Any, Any]
SEOUL = ZoneInfo("Asia/Seoul")


async def grant(client: Client, admin: dict[str, str], user_id: int, amount: int,
                valid_days: int | None = None) -> dict[str, Any]:
    body = {"amount": amount, "reason": "이벤트 쿠폰",
            **({"valid_days": valid_days} if valid_days else {})}
    response = await client.post(f"/api/v1/admin/users/{user_id}/coupons", json=body,
                                 headers=admin)
    assert response.status == 201, await response.text()
    wallet: dict[str, Any] = await response.json()
    return wallet


async def wallet_of(client: Client, person: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/me/wallet", headers=person.headers)
    assert response.status == 200, await response.text()
    wallet: dict[str, Any] = await response.json()
    return wallet


def lots_left(wallet: dict[str, Any], *, now: datetime) -> list[tuple[int, int]]:
    """(coupons left, whole days to expiry) per lot, as the wallet lists them."""
    return [(lot["coupons_left"], (datetime.fromisoformat(lot["expires_at"]) - now).days)
            for lot in wallet["lots"]]


async def test_spending_takes_the_lot_that_expires_first_and_a_refund_puts_it_back(
    client: Client, sign_up: Any, settings: Any, worker: dramatiq.Worker,
) -> None:
    """Three lots granted in an order that is not their expiry's: the seed
    spent them in list order."""
    person, admin = await sign_up(), await admin_headers(client, settings)
    for valid_days in (300, 30, 100):
        await grant(client, admin, person.id, 10, valid_days)
    session = await open_session(client, sign_up, capacity=3, price=15)
    booked = await reserve(client, person, session.timeslot_id, Prefer="wait=8")
    assert booked.status == 201, await booked.text()
    now = system_clock.now()
    wallet = await wallet_of(client, person)
    assert (wallet["balance"], wallet["available"]) == (15, 15)
    # The 30-day lot is gone, the 100-day lot gave 5, the 300-day lot nothing.
    assert lots_left(wallet, now=now) == [(5, 99), (10, 299)]
    cancelled = await client.delete(f"/api/v1/reservations/{(await booked.json())['id']}",
                                    headers=person.headers)
    assert (cancelled.status, (await cancelled.json())["refunded_coupons"]) == (200, 15)
    assert lots_left(await wallet_of(client, person), now=now) == [(10, 29), (10, 99),
                                                                    (10, 299)]
    assert await ledgers_agree([person.id]) == []


async def test_expired_coupons_leave_the_balance_by_a_ledger_entry(
    aiohttp_client: Any, make_app: Any, sign_up: Any, settings: Any,
) -> None:
    """The balance never counts a lot past its expiry, whether or not the
    expiry job has run yet (the seed counted expired lots)."""
    clock = ManualClock(datetime.now(UTC))
    client = await aiohttp_client(make_app(clock=clock))
    admin = await admin_headers(client, settings)
    reader, idle = await sign_up(), await sign_up()
    for person in (reader, idle):
        await grant(client, admin, person.id, 10, valid_days=1)
        await grant(client, admin, person.id, 20)
    clock.advance(timedelta(days=1, seconds=1))

    # Read before any job ran: the expired lot is let go first.
    wallet = await wallet_of(client, reader)
    assert (wallet["balance"], wallet["available"]) == (20, 20)
    assert [lot["coupons_left"] for lot in wallet["lots"]] == [20]
    expiry = await LedgerEntry.get(user_id=reader.id, kind=LedgerKind.EXPIRY)
    assert (expiry.amount, expiry.balance_after) == (-10, 20)

    # Nobody looked at the other wallet: the job lets its lot go, once.
    assert await expire_lots(clock=clock) >= 1
    assert await expire_lots(clock=clock) == 0
    assert await LedgerEntry.filter(user_id=idle.id, kind=LedgerKind.EXPIRY).count() == 1
    assert (await Wallet.get(user_id=idle.id)).balance == 20
    assert await ledgers_agree([reader.id, idle.id]) == []


async def test_a_refund_to_a_lot_that_has_expired_expires_at_once(sign_up: Any) -> None:
    """Coupons keep their lot's expiry: a refund after it gives nothing to spend."""
    person, start = await sign_up(), datetime.now(UTC)
    async with in_transaction():
        await post_entry(user_id=person.id, kind=LedgerKind.GRANT, amount=10,
                         reference=f"short:{person.id}", now=start,
                         expires_at=start + timedelta(days=1))
        await post_entry(user_id=person.id, kind=LedgerKind.GRANT, amount=10,
                         reference=f"long:{person.id}", now=start,
                         expires_at=start + timedelta(days=365))
        await post_entry(user_id=person.id, kind=LedgerKind.BOOKING_DEBIT, amount=-10,
                         reference=f"seat:{person.id}", now=start)
    later = start + timedelta(days=2)
    async with in_transaction():
        await post_entry(user_id=person.id, kind=LedgerKind.BOOKING_REFUND, amount=10,
                         reference=f"seat-refund:{person.id}", now=later,
                         paid_for=f"seat:{person.id}")
    entries = await LedgerEntry.filter(user_id=person.id).order_by("id")
    assert [(entry.kind, entry.amount, entry.balance_after) for entry in entries][-2:] == [
        (LedgerKind.BOOKING_REFUND, 10, 20), (LedgerKind.EXPIRY, -10, 10)]
    short = await CouponLot.get(reference=f"short:{person.id}")
    assert (short.remaining, short.expired) == (0, 10)
    assert await ledgers_agree([person.id]) == []


async def test_people_are_told_a_week_before_their_coupons_expire(sign_up: Any) -> None:
    person, start = await sign_up(), datetime.now(UTC)
    clock = ManualClock(start)
    async with in_transaction():
        await post_entry(user_id=person.id, kind=LedgerKind.GRANT, amount=12,
                         reference=f"notice:{person.id}", now=start,
                         expires_at=start + timedelta(days=10))
    week = timedelta(days=7)
    assert person.id not in await notify_expiring(notice=week, zone=SEOUL, clock=clock)
    clock.advance(timedelta(days=4))
    assert person.id in await notify_expiring(notice=week, zone=SEOUL, clock=clock)
    assert person.id not in await notify_expiring(notice=week, zone=SEOUL, clock=clock)
    (told,) = await Notification.filter(user_id=person.id, type=EXPIRING)
    assert told.payload["coupons"] == 12
    assert told.payload["expires_at"].endswith("+09:00")
