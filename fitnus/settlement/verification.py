"""The three matches a settlement must pass before it is verified.

1. usage: each reservation of a center's sessions in the month, what its
   wallet draws kept (the ledger's per-lot record, which the lot invariants
   tie to the ledger) and its usage record agree; a seat not cancelled kept
   its whole price.
2. payment: each order approved in the month has its purchase credit of
   its coupons, and Kakao Pay's own record of it (all orders, or a sample)
   agrees on the amount approved, the amount cancelled and the status.
3. gross: a center's usage records for the month add up to its settlement.

Each difference is a discrepancy row, found again (not duplicated) by the
next check, open until an admin resolves it with a note.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fitnus.booking.admin_refunds import ADMIN_REFUND_PREFIX, reservation_refunded
from fitnus.booking.models import Reservation, ReservationStatus, seat_paid_for
from fitnus.clock import as_utc
from fitnus.payments.kakaopay import KakaoPayRefused
from fitnus.payments.models import CouponOrder, OrderStatus
from fitnus.payments.service import purchase_reference
from fitnus.settlement.models import (
    KRW_PER_COUPON,
    Discrepancy,
    DiscrepancyKind,
    Settlement,
    UsageKind,
    UsageRecord,
)
from fitnus.settlement.monthly import gross_by_center
from fitnus.settlement.rules import month_days, month_period
from fitnus.wallet.lots import still_drawn
from fitnus.wallet.models import LedgerEntry, LedgerKind

# Kakao Pay's record of one payment, by its tid (fitnus.payments.kakaopay).
LookUpOrder = Callable[[str], Awaitable[dict[str, Any]]]
SETTLED_ORDERS = (OrderStatus.APPROVED, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


async def _found(month: str, kind: DiscrepancyKind, found: list[tuple[int | None, str, str]],
                 *, now: datetime) -> int:
    """Store (center, subject, detail) differences not stored before (found
    again, or already resolved: the same row). The unique key settles a race
    with another check."""
    known = set(await Discrepancy.filter(
        month=month, kind=kind, subject__in=[subject for _, subject, _ in found],
    ).values_list("subject", "detail")) if found else set()
    new = [Discrepancy(month=month, center_id=center_id, kind=kind, subject=subject,
                       detail=detail[:255], created_at=now)
           for center_id, subject, detail in found if (subject, detail[:255]) not in known]
    if new:
        await Discrepancy.bulk_create(new, ignore_conflicts=True)
    return len(found)


async def check_usage(month: str, center_id: int, *, zone: ZoneInfo, now: datetime) -> int:
    """Each seat of the center's sessions in the month: what its usage
    records say, adjustments of later months included, is what its draws
    still hold."""
    period = month_period(month, zone)
    first, following = month_days(month)
    seats = await Reservation.filter(
        starts_at__gte=as_utc(period.start), starts_at__lt=as_utc(period.end),
        timeslot__program__center_id=center_id,
    ).values("id", "command_id", "status", "price_coupons")
    recorded: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in await UsageRecord.filter(reservation_id__in=[seat["id"] for seat in seats]
                                        ).values("reservation_id", "coupons", "amount_krw"):
        recorded[row["reservation_id"]].append(row)
    kept = await still_drawn(seat_paid_for(seat["command_id"]) for seat in seats)
    given_back: dict[int, int] = defaultdict(int)  # by admins, after the fact
    for entry in await LedgerEntry.filter(
            kind=LedgerKind.BOOKING_REFUND, center_id=center_id,
            reference__startswith=ADMIN_REFUND_PREFIX).values("reference", "amount"):
        given_back[reservation_refunded(entry["reference"])] += entry["amount"]
    found: list[tuple[int | None, str, str]] = []
    for seat in seats:
        held = kept.get(seat_paid_for(seat["command_id"]), 0)
        rows = recorded.get(seat["id"], [])
        says = sum(row["coupons"] for row in rows)
        subject = f"reservation:{seat['id']}"
        if not rows and held > 0:
            found.append((center_id, subject, f"kept {held} coupons and has no usage record"))
        elif says != held:
            found.append((center_id, subject, f"its usage records say {says} coupons, "
                                              f"its wallet kept {held}"))
        elif any(row["amount_krw"] != row["coupons"] * KRW_PER_COUPON for row in rows):
            found.append((center_id, subject, "coupons recorded at another price than "
                                              f"{KRW_PER_COUPON} KRW"))
        elif (ReservationStatus(seat["status"]) is not ReservationStatus.CANCELLED
              and held != seat["price_coupons"] - given_back[seat["id"]]):
            found.append((center_id, subject, f"a seat of {seat['price_coupons']} coupons "
                                              f"kept {held}, {given_back[seat['id']]} given "
                                              "back by admins"))
    sessions = {seat["id"] for seat in seats}
    for row in await UsageRecord.filter(
            center_id=center_id, day__gte=first, day__lt=following,
    ).exclude(kind=UsageKind.ADJUSTMENT).values("reservation_id"):
        if row["reservation_id"] not in sessions:
            found.append((center_id, f"reservation:{row['reservation_id']}",
                          "a usage record for no session of this center in the month"))
    return await _found(month, DiscrepancyKind.USAGE, found, now=now)


async def check_gross(month: str, center_ids: list[int], *, now: datetime) -> int:
    gross = await gross_by_center(month, center_ids)
    found: list[tuple[int | None, str, str]] = [
        (settlement.center_id, f"settlement:{settlement.id}",
         f"usage records add up to {gross.get(settlement.center_id, 0)} KRW, "
         f"the settlement's gross is {settlement.gross_krw} KRW")
        for settlement in await Settlement.filter(month=month, center_id__in=center_ids)
        if gross.get(settlement.center_id, 0) != settlement.gross_krw]
    return await _found(month, DiscrepancyKind.GROSS, found, now=now)


def _kakao_disagrees(order: CouponOrder, answer: dict[str, Any]) -> str | None:
    approved = int((answer.get("amount") or {}).get("total") or 0)
    cancelled = int((answer.get("canceled_amount") or {}).get("total") or 0)
    status = str(answer.get("status"))
    expected = ("SUCCESS_PAYMENT" if order.refunded_krw == 0 else
                "CANCEL_PAYMENT" if order.refunded_krw == order.approved_krw else
                "PART_CANCEL_PAYMENT")
    if (approved, cancelled, status) != (order.approved_krw, order.refunded_krw, expected):
        return (f"Kakao Pay: {status}, {approved} KRW approved, {cancelled} cancelled; "
                f"ours: {expected}, {order.approved_krw} approved, {order.refunded_krw} refunded")
    return None


async def check_payments(month: str, *, zone: ZoneInfo, now: datetime,
                         look_up: LookUpOrder | None, sample: int) -> int:
    """``sample`` orders asked of Kakao (0: every one); ``look_up`` None: Kakao
    Pay is not configured, and only our own credits are checked."""
    period = month_period(month, zone)
    orders = await CouponOrder.filter(
        status__in=list(SETTLED_ORDERS), approved_at__gte=as_utc(period.start),
        approved_at__lt=as_utc(period.end)).order_by("id")
    credits = {row["reference"]: row["amount"] for row in await LedgerEntry.filter(
        reference__in=[purchase_reference(order) for order in orders]).values(
        "reference", "amount")}
    found: list[tuple[int | None, str, str]] = []
    for order in orders:
        credit = credits.get(purchase_reference(order))
        if credit != order.coupons:
            found.append((None, f"order:{order.id}:credit",
                          f"an order of {order.coupons} coupons credited {credit or 0}"))
    if look_up is not None:
        asked = orders if sample == 0 or sample >= len(orders) else random.sample(orders, sample)
        for order in asked:
            try:
                differs = _kakao_disagrees(order, await look_up(order.tid or ""))
            except KakaoPayRefused as refused:
                # Kakao Pay does not know the payment: a difference, not a failure.
                differs = f"Kakao Pay refused to show it: {refused}"
            if differs is not None:
                found.append((None, f"order:{order.id}:kakao", differs))
    return await _found(month, DiscrepancyKind.PAYMENT, found, now=now)


async def centers_in(month: str, *, zone: ZoneInfo) -> list[int]:
    """Every center with a settlement or a session in the month."""
    period = month_period(month, zone)
    with_sessions = await Reservation.filter(
        starts_at__gte=as_utc(period.start), starts_at__lt=as_utc(period.end),
    ).distinct().values_list("timeslot__program__center_id", flat=True)
    settled = await Settlement.filter(month=month).values_list("center_id", flat=True)
    return sorted({int(c) for c in [*with_sessions, *settled]})  # type: ignore[call-overload]
