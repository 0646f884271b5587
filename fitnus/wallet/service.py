"""The coupon wallet and its ledger. 1 coupon = 1,000 KRW."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.accounts.models import User
from fitnus.errors import Conflict, InvalidInput, NotFound
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet

# The unique index MySQL names after the wallet's user_id column.
WALLET_USER_INDEX = "user_id"


@dataclass(frozen=True)
class WalletView:
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


class InsufficientCoupons(Conflict):
    code = "insufficient_coupons"


async def wallet_of(user_id: int) -> WalletView:
    wallet = await Wallet.get_or_none(user_id=user_id)
    return WalletView(wallet.balance, wallet.held) if wallet else WalletView(0, 0)


async def open_wallet(*, user_id: int, now: datetime) -> Wallet:
    """Inside the transaction that creates the account: every user has one.

    Created with the account rather than on first use, because concurrent
    first inserts of one unique key deadlock in InnoDB, and a deadlock rolls
    back the whole transaction, savepoints included.
    """
    return await Wallet.create(user_id=user_id, balance=0, held=0, updated_at=now)


async def post_entry(
    *, user_id: int, kind: LedgerKind, amount: int, reference: str, now: datetime,
    center_id: int | None = None,
) -> LedgerEntry:
    """Apply ``amount`` to the balance and append its ledger row, once per reference.

    Call inside the transaction of the state change it pays for. A repeated
    reference returns the first entry and changes nothing; a debit larger
    than the available coupons raises InsufficientCoupons and changes nothing.
    """
    if amount == 0:
        # Also what keeps the row count below meaningful: MySQL counts changed
        # rows, and a zero change could change none.
        raise InvalidInput("a ledger entry moves at least one coupon", code="zero_amount")
    existing = await LedgerEntry.get_or_none(reference=reference)
    if existing is not None:
        return existing
    try:
        async with in_transaction():  # a savepoint, undone with the duplicate below
            # The guard is in the UPDATE itself: balance - held + amount >= 0.
            changed = await Wallet.filter(
                user_id=user_id, balance__gte=F("held") - amount
            ).update(balance=F("balance") + amount, updated_at=now)
            if changed != 1:
                if not await Wallet.exists(user_id=user_id):
                    raise NotFound("no such wallet", code="wallet_not_found")
                raise InsufficientCoupons("not enough coupons for this")
            wallet = await Wallet.get(user_id=user_id)
            return await LedgerEntry.create(
                user_id=user_id, kind=kind, amount=amount, balance_after=wallet.balance,
                reference=reference, center_id=center_id, created_at=now,
            )
    except IntegrityError:
        # The same reference committed concurrently: ours is rolled back.
        return await LedgerEntry.select_for_update().get(reference=reference)


async def lock_wallets(user_ids: Collection[int]) -> dict[int, Wallet]:
    """Lock these people's wallets for the caller's transaction, by user id.

    Every transaction that changes several wallets takes them through here,
    in this one order, so two such transactions wait for each other instead
    of deadlocking.
    """
    if not user_ids:
        return {}
    # Rows are locked in the order the scan meets them, whatever ORDER BY
    # says: on a small table MySQL prefers a scan of the primary key, which
    # also locks every row it passes. The unique index on user_id walks them
    # in user order and locks only these.
    return {
        wallet.user_id: wallet  # type: ignore[attr-defined]
        for wallet in await Wallet.select_for_update().filter(
            user_id__in=list(user_ids)).force_index(WALLET_USER_INDEX).order_by("user_id")
    }


async def debit_locked(
    debits: Sequence[tuple[Wallet, str]], *, amount: int, kind: LedgerKind, now: datetime,
    center_id: int | None = None,
) -> None:
    """``post_entry`` for many people at once: take ``amount`` coupons from each
    wallet and append one ledger row per (wallet, reference), in one guarded
    UPDATE and one INSERT, whatever the count.

    The wallets belong to different people and are locked by the caller's
    transaction (SELECT ... FOR UPDATE), so their balances give each row's
    balance_after. If any cannot pay, raises InsufficientCoupons after a
    partial UPDATE: the caller's transaction must not commit.
    """
    if amount <= 0:
        raise InvalidInput("a debit takes at least one coupon", code="zero_amount")
    # By primary key: only these rows, which the caller holds (a scan would
    # lock every row it passes, and wait on other people's batches).
    wallet_ids = [wallet.id for wallet, _ in debits]
    # The guard is in the UPDATE itself. Every matched row changes (amount > 0),
    # so MySQL's changed-row count is the matched count.
    debited = await Wallet.filter(id__in=wallet_ids, balance__gte=F("held") + amount).update(
        balance=F("balance") - amount, updated_at=now
    )
    if debited != len(wallet_ids):
        raise InsufficientCoupons(f"{len(wallet_ids) - debited} of {len(wallet_ids)} cannot pay")
    await LedgerEntry.bulk_create([
        LedgerEntry(
            user_id=wallet.user_id, kind=kind, amount=-amount,  # type: ignore[attr-defined]
            balance_after=wallet.balance - amount, reference=reference, center_id=center_id,
            created_at=now,
        )
        for wallet, reference in debits
    ])


async def hold_coupons(*, user_id: int, amount: int, now: datetime) -> bool:
    """Set ``amount`` coupons aside (``held``) for something not yet bought;
    whether the person had them available. Inside the caller's transaction,
    which holds the wallet. The balance does not move, so no ledger row."""
    if amount <= 0:
        raise InvalidInput("a hold sets aside at least one coupon", code="zero_amount")
    held = await Wallet.filter(user_id=user_id, balance__gte=F("held") + amount).update(
        held=F("held") + amount, updated_at=now)
    return held == 1


async def release_hold(*, user_id: int, amount: int, now: datetime) -> None:
    """Coupons set aside by ``hold_coupons`` become available again."""
    if amount <= 0:
        raise InvalidInput("a release frees at least one coupon", code="zero_amount")
    released = await Wallet.filter(user_id=user_id, held__gte=amount).update(
        held=F("held") - amount, updated_at=now)
    if released != 1:
        raise RuntimeError(f"wallet of user {user_id}: releasing {amount} breaks its hold")


async def capture_hold(*, user_id: int, amount: int, kind: LedgerKind, reference: str,
                       now: datetime, center_id: int | None = None) -> LedgerEntry:
    """Spend coupons set aside by ``hold_coupons``: the balance and the hold
    fall together (what is available does not change), with its ledger row."""
    if amount <= 0:
        raise InvalidInput("a capture spends at least one coupon", code="zero_amount")
    captured = await Wallet.filter(user_id=user_id, held__gte=amount,
                                   balance__gte=amount).update(
        balance=F("balance") - amount, held=F("held") - amount, updated_at=now)
    if captured != 1:
        raise RuntimeError(f"wallet of user {user_id}: capturing {amount} breaks its hold")
    wallet = await Wallet.get(user_id=user_id)
    return await LedgerEntry.create(
        user_id=user_id, kind=kind, amount=-amount, balance_after=wallet.balance,
        reference=reference, center_id=center_id, created_at=now)


async def grant_coupons(
    *, granted_by: int, user_id: int, amount: int, idempotency_key: str, now: datetime
) -> WalletView:
    """An admin's grant, once per (admin, person, key): the same key sent for
    two people is two grants, and sent again for one person is that grant."""
    if not await User.exists(id=user_id):
        raise NotFound("no such user", code="user_not_found")
    async with in_transaction():
        await post_entry(user_id=user_id, kind=LedgerKind.GRANT, amount=amount,
                         reference=f"grant:{granted_by}:{user_id}:{idempotency_key}", now=now)
    return await wallet_of(user_id)


async def ledger_of(user_id: int, *, before_id: int | None, limit: int) -> list[LedgerEntry]:
    query = LedgerEntry.filter(user_id=user_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit + 1)
