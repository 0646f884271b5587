"""The coupon wallet: grants, the ledger, and the invariants between them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from fitnus.clock import system_clock
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet
from fitnus.wallet.service import InsufficientCoupons, debit_locked, post_entry
from tests.e2e.test_centers import admin_headers

Client = TestClient[Any, Any]
YEAR = timedelta(days=365)


async def grant(client: Client, admin: dict[str, str], user_id: int, amount: int,
                key: str | None = None) -> Any:
    headers = {**admin, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"/api/v1/admin/users/{user_id}/coupons",
                             json={"amount": amount, "reason": "환영 쿠폰"}, headers=headers)


async def ledger_sum(user_id: int) -> int:
    row = await LedgerEntry.filter(user_id=user_id).annotate(total=Sum("amount")).first().values(
        "total")
    return int(row["total"] or 0) if row else 0


@pytest.mark.portable
async def test_a_new_wallet_is_empty(client: Client, sign_up: Any) -> None:
    user = await sign_up()
    response = await client.get("/api/v1/me/wallet", headers=user.headers)
    assert await response.json() == {"balance": 0, "held": 0, "available": 0, "lots": []}


@pytest.mark.portable
async def test_an_admin_grant_shows_in_wallet_and_ledger(
    client: Client, sign_up: Any, settings: Any
) -> None:
    user, admin = await sign_up(), await admin_headers(client, settings)
    first = await grant(client, admin, user.id, 220)
    assert first.status == 201
    wallet = await first.json()
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (220, 0, 220)
    (lot,) = wallet["lots"]
    expires_at = datetime.fromisoformat(lot["expires_at"])
    assert lot["coupons_left"] == 220
    assert expires_at.utcoffset() == timedelta(hours=9)
    assert abs(expires_at - (system_clock.now() + YEAR)) < timedelta(minutes=1)
    await grant(client, admin, user.id, 30)
    ledger = await (await client.get("/api/v1/me/wallet/ledger", headers=user.headers)).json()
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in ledger["items"]] == [
        ("grant", 30, 250), ("grant", 220, 220)
    ]
    assert await ledger_sum(user.id) == 250


async def test_only_admins_grant(client: Client, sign_up: Any, settings: Any) -> None:
    user, owner = await sign_up(), await sign_up("owner")
    for caller in (user, owner):
        response = await grant(client, caller.headers, user.id, 10)
        assert response.status == 403
    assert (await client.post(f"/api/v1/admin/users/{user.id}/coupons",
                              json={"amount": 1, "reason": "x"})).status == 401
    missing = await grant(client, await admin_headers(client, settings), 2**62, 10)
    assert missing.status == 404


@pytest.mark.parametrize("amount", [0, -5, 100_001, "10", 1.5])
async def test_grant_amounts_are_validated(
    client: Client, sign_up: Any, settings: Any, amount: Any
) -> None:
    user = await sign_up()
    response = await grant(client, await admin_headers(client, settings), user.id, amount)
    assert response.status == 400


async def test_a_repeated_idempotency_key_grants_once_even_concurrently(
    client: Client, sign_up: Any, settings: Any
) -> None:
    user, admin = await sign_up(), await admin_headers(client, settings)
    key = uuid.uuid4().hex
    responses = await asyncio.gather(*(grant(client, admin, user.id, 100, key)
                                       for _ in range(15)))
    assert {response.status for response in responses} == {201}
    wallet = await Wallet.get(user_id=user.id)
    assert wallet.balance == 100
    assert await LedgerEntry.filter(user_id=user.id).count() == 1


async def test_one_idempotency_key_for_two_people_is_two_grants(
    client: Client, sign_up: Any, settings: Any
) -> None:
    first, second = await sign_up(), await sign_up()
    admin, key = await admin_headers(client, settings), uuid.uuid4().hex
    to_first = await grant(client, admin, first.id, 100, key)
    to_second = await grant(client, admin, second.id, 30, key)
    assert (to_first.status, to_second.status) == (201, 201)
    assert (await to_second.json())["balance"] == 30
    repeated = await grant(client, admin, first.id, 100, key)
    assert (repeated.status, await repeated.json()) == (201, await to_first.json())
    for user, balance in ((first, 100), (second, 30)):
        assert (await Wallet.get(user_id=user.id)).balance == balance
        assert await ledger_sum(user.id) == balance


async def test_concurrent_debits_never_overdraw(sign_up: Any) -> None:
    user = await sign_up()
    now = system_clock.now()
    async with in_transaction():
        await post_entry(user_id=user.id, kind=LedgerKind.GRANT, amount=50,
                         reference=f"seed:{user.id}", now=now, expires_at=now + YEAR)

    async def debit(number: int) -> bool:
        try:
            async with in_transaction():
                await post_entry(user_id=user.id, kind=LedgerKind.BOOKING_DEBIT, amount=-12,
                                 reference=f"debit:{user.id}:{number}", now=now)
        except InsufficientCoupons:
            return False
        return True

    outcomes = await asyncio.gather(*(debit(number) for number in range(10)))
    assert outcomes.count(True) == 4  # 4 x 12 = 48 <= 50 < 60
    wallet = await Wallet.get(user_id=user.id)
    assert wallet.balance == 50 - 48 >= 0
    assert await ledger_sum(user.id) == wallet.balance


@pytest.mark.portable
async def test_a_batch_debit_charges_everyone_or_nobody(sign_up: Any) -> None:
    rich, poor = await sign_up(), await sign_up()
    now = system_clock.now()
    async with in_transaction():
        await post_entry(user_id=rich.id, kind=LedgerKind.GRANT, amount=30,
                         reference=f"seed:{rich.id}", now=now, expires_at=now + YEAR)
        await post_entry(user_id=poor.id, kind=LedgerKind.GRANT, amount=5,
                         reference=f"seed:{poor.id}", now=now, expires_at=now + YEAR)

    async def debit_both(amount: int) -> None:
        async with in_transaction():
            wallets = await Wallet.select_for_update().filter(
                user_id__in=[rich.id, poor.id]).order_by("user_id")
            debits = [(wallet, f"batch:{wallet.user_id}:{amount}")  # type: ignore[attr-defined]
                      for wallet in wallets]
            await debit_locked(debits, amount=amount, kind=LedgerKind.BOOKING_DEBIT, now=now)

    with pytest.raises(InsufficientCoupons):
        await debit_both(10)
    assert [(await Wallet.get(user_id=user.id)).balance for user in (rich, poor)] == [30, 5]
    await debit_both(4)
    for user, balance in ((rich, 26), (poor, 1)):
        assert (await Wallet.get(user_id=user.id)).balance == balance
        assert await ledger_sum(user.id) == balance
        entry = await LedgerEntry.get(reference=f"batch:{user.id}:4")
        assert (entry.amount, entry.balance_after) == (-4, balance)


async def test_the_ledger_pages_newest_first(client: Client, sign_up: Any, settings: Any) -> None:
    user, admin = await sign_up(), await admin_headers(client, settings)
    for amount in range(1, 6):
        await grant(client, admin, user.id, amount)
    first = await (await client.get("/api/v1/me/wallet/ledger?limit=3",
                                    headers=user.headers)).json()
    second = await (await client.get(
        f"/api/v1/me/wallet/ledger?limit=3&cursor={first['next_cursor']}", headers=user.headers
    )).json()
    assert [e["amount"] for e in first["items"] + second["items"]] == [5, 4, 3, 2, 1]
    assert second["next_cursor"] is None
