"""The coupon wallet and its ledger. 1 coupon = 1,000 KRW.

Coupons live in lots that expire (fitnus.wallet.lots): locking a wallet lets
its expired lots go first, so a balance read or spent never counts them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.accounts.models import User
from fitnus.clock import Clock, as_utc
from fitnus.errors import Conflict, InvalidInput, NotFound
from fitnus.notifications.models import Notification
from fitnus.notifications.order import take_turn
from fitnus.wallet import lots
from fitnus.wallet.models import CouponLot, LedgerEntry, LedgerKind, Wallet

# The unique index MySQL names after the wallet's user_id column.
WALLET_USER_INDEX = "user_id"


@dataclass(frozen=True)
class WalletView:
    balance: int
    held: int
    lots: list[CouponLot] = field(default_factory=list)

    @property
    def available(self) -> int:
        return self.balance - self.held


class InsufficientCoupons(Conflict):
    code = "insufficient_coupons"


async def wallet_of(user_id: int, *, now: datetime) -> WalletView:
    """The wallet as it stands at ``now``: lots that have expired are let go
    first (the expiry job would, a little later), so the balance never
    counts them."""
    if await lots.holds_expired([user_id], now=now):
        async with in_transaction():
            await lock_wallets([user_id], now=now)
    wallet = await Wallet.get_or_none(user_id=user_id)
    if wallet is None:
        return WalletView(0, 0)
    return WalletView(wallet.balance, wallet.held, await lots.lots_of(user_id, now=now))


async def open_wallet(*, user_id: int, now: datetime) -> Wallet:
    """Inside the transaction that creates the account: every user has one.

    Created with the account rather than on first use, because concurrent
    first inserts of one unique key deadlock in InnoDB, and a deadlock rolls
    back the whole transaction, savepoints included.
    """
    return await Wallet.create(user_id=user_id, balance=0, held=0, updated_at=now)


async def post_entry(
    *, user_id: int, kind: LedgerKind, amount: int, reference: str, now: datetime,
    center_id: int | None = None, paid_for: str | None = None,
    expires_at: datetime | None = None,
) -> LedgerEntry:
    """Apply ``amount`` to the balance and append its ledger row, once per reference.

    A debit takes the coupons from the lots that expire first, for
    ``paid_for`` (by default the reference); a credit for ``paid_for`` puts
    back what it drew; any other credit is a new lot expiring at
    ``expires_at``. Call inside the transaction of the state change it pays
    for. A repeated reference returns the first entry and changes nothing; a
    debit larger than the available coupons raises InsufficientCoupons and
    changes nothing.
    """
    if amount == 0:
        # Also what keeps the row count below meaningful: MySQL counts changed
        # rows, and a zero change could change none.
        raise InvalidInput("a ledger entry moves at least one coupon", code="zero_amount")
    if amount > 0 and paid_for is None and expires_at is None:
        raise ValueError("new coupons need an expiry")
    existing = await LedgerEntry.get_or_none(reference=reference)
    if existing is not None:
        return existing
    try:
        async with in_transaction():  # a savepoint, undone with the duplicate below
            wallet = (await lock_wallets([user_id], now=now)).get(user_id)
            if wallet is None:
                raise NotFound("no such wallet", code="wallet_not_found")
            if wallet.balance - wallet.held + amount < 0:
                raise InsufficientCoupons("not enough coupons for this")
            await Wallet.filter(id=wallet.id).update(balance=F("balance") + amount,
                                                     updated_at=now)
            wallet.balance += amount
            entry = await LedgerEntry.create(
                user_id=user_id, kind=kind, amount=amount, balance_after=wallet.balance,
                reference=reference, center_id=center_id, created_at=now,
            )
            if amount < 0:
                await lots.draw([lots.Spend(user_id, -amount, paid_for or reference)], now=now)
            elif paid_for is not None:
                await lots.give_back(coupons=amount, paid_for=paid_for)
                await lots.expire({user_id: wallet}, now=now)
            else:
                assert expires_at is not None
                await lots.add_lot(user_id=user_id, coupons=amount, reference=reference,
                                   now=now, expires_at=expires_at)
            return entry
    except IntegrityError:
        # The same reference committed concurrently: ours is rolled back.
        return await LedgerEntry.select_for_update().get(reference=reference)


async def lock_wallets(user_ids: Collection[int], *, now: datetime) -> dict[int, Wallet]:
    """Lock these people's wallets for the caller's transaction, by user id,
    with what their expired lots held let go.

    Every transaction that changes wallets or lots takes them through here,
    in this one order and before any lot, so two such transactions wait for
    each other instead of deadlocking.
    """
    if not user_ids:
        return {}
    # Rows are locked in the order the scan meets them, whatever ORDER BY
    # says: on a small table MySQL prefers a scan of the primary key, which
    # also locks every row it passes. The unique index on user_id walks them
    # in user order and locks only these.
    wallets = {
        wallet.user_id: wallet  # type: ignore[attr-defined]
        for wallet in await Wallet.select_for_update().filter(
            user_id__in=list(user_ids)).force_index(WALLET_USER_INDEX).order_by("user_id")
    }
    await lots.expire(wallets, now=now)
    return wallets


async def debit_locked(
    debits: Sequence[tuple[Wallet, str]], *, amount: int, kind: LedgerKind, now: datetime,
    center_id: int | None = None,
) -> None:
    """``post_entry`` for many people at once: take ``amount`` coupons from each
    wallet and append one ledger row per (wallet, reference), in one guarded
    UPDATE and one INSERT, whatever the count.

    The wallets belong to different people and are locked by the caller's
    transaction (``lock_wallets``), so their balances give each row's
    balance_after. Each reference names what its coupons paid for. If any
    cannot pay, raises InsufficientCoupons after a partial UPDATE: the
    caller's transaction must not commit.
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
    await lots.draw([lots.Spend(wallet.user_id, amount, reference)  # type: ignore[attr-defined]
                     for wallet, reference in debits], now=now)


async def hold_coupons(*, user_id: int, amount: int, held_for: str, now: datetime,
                       lot: CouponLot | None = None) -> bool:
    """Set ``amount`` coupons aside (``held``) for something not yet bought;
    whether the person had them available. They leave their lots (or
    ``lot``, which the caller saw holds them) now, drawn for ``held_for``.
    Inside the caller's transaction, which holds the wallet. The balance
    does not move, so no ledger row."""
    if amount <= 0:
        raise InvalidInput("a hold sets aside at least one coupon", code="zero_amount")
    held = await Wallet.filter(user_id=user_id, balance__gte=F("held") + amount).update(
        held=F("held") + amount, updated_at=now)
    if held != 1:
        return False
    await lots.draw([lots.Spend(user_id, amount, held_for)], now=now,
                    lot_id=None if lot is None else lot.id)
    return True


async def release_hold(*, user_id: int, amount: int, held_for: str, now: datetime) -> None:
    """Coupons set aside by ``hold_coupons`` go back to their lots (and
    expire at once if their lot has meanwhile)."""
    if amount <= 0:
        raise InvalidInput("a release frees at least one coupon", code="zero_amount")
    released = await Wallet.filter(user_id=user_id, held__gte=amount).update(
        held=F("held") - amount, updated_at=now)
    if released != 1:
        raise RuntimeError(f"wallet of user {user_id}: releasing {amount} breaks its hold")
    await lots.give_back(coupons=amount, paid_for=held_for)
    await lots.expire({user_id: await Wallet.get(user_id=user_id)}, now=now)


async def capture_hold(*, user_id: int, amount: int, kind: LedgerKind, reference: str,
                       held_for: str, paid_for: str, now: datetime,
                       center_id: int | None = None) -> LedgerEntry:
    """Spend coupons set aside by ``hold_coupons`` on ``paid_for``: the
    balance and the hold fall together (what is available does not change),
    with its ledger row."""
    if amount <= 0:
        raise InvalidInput("a capture spends at least one coupon", code="zero_amount")
    captured = await Wallet.filter(user_id=user_id, held__gte=amount,
                                   balance__gte=amount).update(
        balance=F("balance") - amount, held=F("held") - amount, updated_at=now)
    if captured != 1:
        raise RuntimeError(f"wallet of user {user_id}: capturing {amount} breaks its hold")
    await lots.pass_draws(paid_for=held_for, to=paid_for)
    wallet = await Wallet.get(user_id=user_id)
    return await LedgerEntry.create(
        user_id=user_id, kind=kind, amount=-amount, balance_after=wallet.balance,
        reference=reference, center_id=center_id, created_at=now)


async def grant_coupons(
    *, granted_by: int, user_id: int, amount: int, idempotency_key: str, now: datetime,
    valid_for: timedelta,
) -> WalletView:
    """An admin's grant, once per (admin, person, key): the same key sent for
    two people is two grants, and sent again for one person is that grant."""
    if not await User.exists(id=user_id):
        raise NotFound("no such user", code="user_not_found")
    async with in_transaction():
        await post_entry(user_id=user_id, kind=LedgerKind.GRANT, amount=amount,
                         reference=f"grant:{granted_by}:{user_id}:{idempotency_key}", now=now,
                         expires_at=now + valid_for)
    return await wallet_of(user_id, now=now)


async def ledger_of(user_id: int, *, before_id: int | None, limit: int) -> list[LedgerEntry]:
    query = LedgerEntry.filter(user_id=user_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit + 1)


# The expiry job looks this far back for lots that ran out; one older (the
# job stopped for a month) is let go when its person's wallet is next locked.
EXPIRY_LOOKBACK = timedelta(days=30)
# People, or lots, per transaction of the expiry jobs.
EXPIRY_PAGE = 200
EXPIRING = "coupons.expiring"


async def expire_lots(*, clock: Clock) -> int:
    """The expiry job: what lots that ran out still hold is let go, a page
    of people per transaction. Idempotent; returns how many people lost
    coupons."""
    now = clock.now()
    people = 0
    while page := await lots.people_with_expired_lots(now=now, since=now - EXPIRY_LOOKBACK,
                                                      limit=EXPIRY_PAGE):
        async with in_transaction():
            await lock_wallets(page, now=now)
        people += len(page)
    return people


async def notify_expiring(*, notice: timedelta, zone: ZoneInfo, clock: Clock) -> set[int]:
    """Tell people of coupons that expire within ``notice``, once per lot;
    returns who was told. Lots are not locked (bookings lock several under
    their wallets): the notification's unique key keeps a second run, or a
    run after one that died half-way, from telling twice."""
    now = clock.now()
    told: set[int] = set()
    while due := await CouponLot.filter(
            expiry_notified_at__isnull=True, remaining__gt=0,
            expires_at__gt=as_utc(now), expires_at__lte=as_utc(now + notice),
    ).order_by("expires_at", "id").limit(EXPIRY_PAGE):
        async with in_transaction():
            await take_turn(lot.user_id for lot in due)  # type: ignore[attr-defined]
            await Notification.bulk_create([
                Notification(user_id=lot.user_id, type=EXPIRING,  # type: ignore[attr-defined]
                             dedupe_key=f"{EXPIRING}:{lot.id}", created_at=now, payload={
                                 "lot_id": lot.id, "coupons": lot.remaining,
                                 "expires_at": lot.expires_at.astimezone(zone).isoformat()})
                for lot in due], ignore_conflicts=True)
        for lot in due:  # one row a statement: never two lots' locks at once
            await CouponLot.filter(id=lot.id).update(expiry_notified_at=now)
        told |= {lot.user_id for lot in due}  # type: ignore[attr-defined]
    return told
