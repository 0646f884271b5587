"""Coupon lots: coupons acquired together (a purchase, a grant) expire together.

Every change to a person's lots is made under their wallet's row lock, taken
first (fitnus.wallet.service.lock_wallets), and keeps, per person,

    wallet.balance - wallet.held = Σ remaining of their lots not yet expired

so the wallet's guarded UPDATEs decide whether the lots can pay. Spending
takes from the lot that expires first; what it took is recorded as draws
under what it paid for, so a refund puts the coupons back in the lots they
came from, with their own expiry. A lot that runs out of time gives up what
is left in it by an ``expiry`` ledger entry, so the balance stays the sum of
the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from tortoise.expressions import F

from fitnus.clock import as_utc
from fitnus.wallet.models import CouponDraw, CouponLot, LedgerEntry, LedgerKind, Wallet

# Tortoise's name for CouponLot's ("user_id", "expires_at") index: some
# people's lots are found through it, not through the lone expires_at index,
# which walks everybody's lots in expiry order.
LOT_USER_INDEX = "idx_coupon_lot_user_id_88343b"


@dataclass(frozen=True)
class Spend:
    """``coupons`` of one person's lots, for ``paid_for``."""

    user_id: int
    coupons: int
    paid_for: str


class LotsOutOfStep(RuntimeError):
    """A person's lots do not hold what their wallet says: a bug, never an
    answer to give a person. The caller's transaction must not commit."""


async def add_lot(*, user_id: int, coupons: int, reference: str, now: datetime,
                  expires_at: datetime) -> CouponLot:
    return await CouponLot.create(user_id=user_id, coupons=coupons, remaining=coupons,
                                  reference=reference, acquired_at=now, expires_at=expires_at)


async def draw(spends: Sequence[Spend], *, now: datetime, lot_id: int | None = None) -> None:
    """Take each spend from its person's lots, the one that expires first
    first (or from lot ``lot_id`` only), and record the draws. The wallets'
    guards have passed."""
    users = {spend.user_id for spend in spends}
    lots: dict[int, list[CouponLot]] = defaultdict(list)
    only = {} if lot_id is None else {"id": lot_id}
    for lot in await _lock_lots(users, expires_at__gt=as_utc(now), remaining__gt=0, **only):
        lots[lot.user_id].append(lot)  # type: ignore[attr-defined]
    changed: dict[int, CouponLot] = {}
    draws: list[CouponDraw] = []
    for spend in spends:
        wanted = spend.coupons
        for lot in lots[spend.user_id]:
            taken = min(wanted, lot.remaining)
            if taken == 0:
                continue
            lot.remaining -= taken
            wanted -= taken
            changed[lot.id] = lot
            draws.append(CouponDraw(lot_id=lot.id, paid_for=spend.paid_for, coupons=taken,
                                    returned=0, created_at=now))
            if wanted == 0:
                break
        if wanted:
            raise LotsOutOfStep(f"user {spend.user_id}: lots lack {wanted} coupons the wallet has")
    if changed:
        await CouponLot.bulk_update(list(changed.values()), fields=["remaining"])
        await CouponDraw.bulk_create(draws)


async def _lock_lots(user_ids: Iterable[int], **conditions: object) -> list[CouponLot]:
    """These people's lots that meet ``conditions``, locked, in spending order.

    Found first by a plain read, then locked by id. A locking read by person
    would lock, beyond each person's last lot, the next person's first one
    (InnoDB reads one entry past a range to see it ended), and so wait for
    any transaction spending that neighbour's coupons: two batches of
    different timeslots, whose people differ, queued behind each other
    (bench/RESULTS.md, "Workers"). The plain read is current: a person's
    lots change only under their wallet's lock, which the caller holds.
    """
    found = await CouponLot.filter(user_id__in=list(user_ids), **conditions).force_index(
        LOT_USER_INDEX).values_list("id", flat=True)
    if not found:
        return []
    # By id only: through any other index the lock could reach other people's lots.
    return await CouponLot.select_for_update().filter(id__in=list(found), **conditions).force_index(
        "PRIMARY").order_by("user_id", "expires_at", "id")


async def give_back(*, coupons: int, paid_for: str) -> None:
    """Put ``coupons`` of what ``paid_for`` drew back in their lots, those
    that would last longest first. A lot that has expired meanwhile takes
    them too: ``expire`` then lets them go."""
    draws = [draw for draw in await CouponDraw.select_for_update().filter(
        paid_for=paid_for).order_by("id") if draw.returned < draw.coupons]
    lots = {lot.id: lot for lot in await CouponLot.select_for_update().filter(
        id__in=[draw.lot_id for draw in draws]).order_by("id")}  # type: ignore[attr-defined]
    draws.sort(key=lambda draw: (lots[draw.lot_id].expires_at,  # type: ignore[attr-defined]
                                 draw.id), reverse=True)
    wanted = coupons
    changed: list[CouponDraw] = []
    for each in draws:
        returned = min(wanted, each.coupons - each.returned)
        if returned == 0:
            break
        each.returned += returned
        lots[each.lot_id].remaining += returned  # type: ignore[attr-defined]
        wanted -= returned
        changed.append(each)
    if wanted:
        raise LotsOutOfStep(f"{paid_for}: drew {coupons - wanted} coupons, not {coupons}")
    await CouponDraw.bulk_update(changed, fields=["returned"])
    await CouponLot.bulk_update(
        [lots[each.lot_id] for each in changed],  # type: ignore[attr-defined]
        fields=["remaining"])


async def still_drawn(paid_for: Iterable[str]) -> dict[str, int]:
    """What each thing's draws still hold (spent on it, not given back), in one query."""
    drawn: dict[str, int] = defaultdict(int)
    for row in await CouponDraw.filter(paid_for__in=list(paid_for)).values(
            "paid_for", "coupons", "returned"):
        drawn[row["paid_for"]] += row["coupons"] - row["returned"]
    return drawn


async def live_part(paid_for: str, *, now: datetime) -> int:
    """Of what ``paid_for`` drew and still holds, what its lots would take
    back unexpired: a hold released now returns only that much to spend."""
    draws = await CouponDraw.filter(paid_for=paid_for, lot__expires_at__gt=as_utc(now)
                                    ).values_list("coupons", "returned")
    return sum(coupons - returned for coupons, returned in draws)


async def pass_draws(*, paid_for: str, to: str) -> None:
    """What ``paid_for`` drew now pays for ``to``: a hold spent on a seat,
    a seat exchanged for another."""
    await CouponDraw.filter(paid_for=paid_for).update(paid_for=to)


async def expire(wallets: Mapping[int, Wallet], *, now: datetime) -> None:
    """Let go of what is left in these people's lots that have expired: one
    ``expiry`` ledger entry per lot, and each wallet object brought up to date."""
    expired = await _lock_lots(wallets, expires_at__lte=as_utc(now), remaining__gt=0)
    entries: list[LedgerEntry] = []
    for lot in expired:
        wallet = wallets[lot.user_id]  # type: ignore[attr-defined]
        wallet.balance -= lot.remaining
        entries.append(LedgerEntry(
            user_id=wallet.user_id, kind=LedgerKind.EXPIRY,  # type: ignore[attr-defined]
            amount=-lot.remaining, balance_after=wallet.balance,
            reference=f"expiry:{lot.id}:{lot.expired}", created_at=now))
        await Wallet.filter(id=wallet.id).update(balance=F("balance") - lot.remaining,
                                                 updated_at=now)
        lot.expired += lot.remaining
        lot.remaining = 0
    if expired:
        await CouponLot.bulk_update(expired, fields=["remaining", "expired"])
        await LedgerEntry.bulk_create(entries)


async def people_with_expired_lots(*, now: datetime, since: datetime,
                                   limit: int) -> list[int]:
    """People holding coupons in lots that expired after ``since``."""
    people = await CouponLot.filter(
        expires_at__gt=as_utc(since), expires_at__lte=as_utc(now), remaining__gt=0,
    ).distinct().limit(limit).values_list("user_id", flat=True)
    return cast(list[int], people)


async def lots_of(user_id: int, *, now: datetime) -> list[CouponLot]:
    """The lots still holding coupons, the next to expire first."""
    return await CouponLot.filter(user_id=user_id, expires_at__gt=as_utc(now),
                                  remaining__gt=0).order_by("expires_at", "id")


async def holds_expired(user_ids: Collection[int], *, now: datetime) -> bool:
    return await CouponLot.exists(user_id__in=list(user_ids), expires_at__lte=as_utc(now),
                                  remaining__gt=0)
