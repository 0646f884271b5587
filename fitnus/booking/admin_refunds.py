"""An admin gives back coupons a seat kept (a session that went wrong, a
complaint upheld), after the fact: the settlement records it as an
adjustment on the day it happens (fitnus.settlement.usage)."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from fitnus.booking.models import Reservation, ReservationStatus, seat_paid_for
from fitnus.clock import Clock
from fitnus.errors import Conflict, NotFound
from fitnus.notifications.service import notify
from fitnus.wallet.lots import still_drawn
from fitnus.wallet.models import LedgerEntry, LedgerKind
from fitnus.wallet.service import lock_wallets, post_entry

ADMIN_REFUND_PREFIX = "admin-refund:"
REFUNDED = "reservation.refunded"


def reservation_refunded(reference: str) -> int:
    """The reservation an admin refund's ledger reference names."""
    return int(reference.removeprefix(ADMIN_REFUND_PREFIX).split(":", 1)[0])


@dataclass(frozen=True)
class AdminRefund:
    reservation_id: int
    user_id: int
    refunded_coupons: int
    kept_coupons: int


async def refund_kept(*, reservation_id: int, coupons: int, reason: str, key: str,
                      clock: Clock) -> AdminRefund:
    """Give back ``coupons`` of what the seat kept, once per ``key``: a
    repeated key answers what the first did. 409 when the seat kept less, or
    while its session is still ahead."""
    now = clock.now()
    async with in_transaction():
        reservation = await Reservation.get_or_none(id=reservation_id).prefetch_related(
            "timeslot__program")
        if reservation is None:
            raise NotFound("no such reservation", code="reservation_not_found")
        if reservation.status is ReservationStatus.CONFIRMED and reservation.starts_at > now:
            # Its cancellation, a move or a withdrawal would give back the
            # whole price, and find part of it given already.
            raise Conflict("the session has not started: the booking can still be cancelled",
                           code="session_not_started")
        user_id: int = reservation.user_id  # type: ignore[attr-defined]
        paid_for = seat_paid_for(reservation.command_id)
        await lock_wallets([user_id], now=now)  # one refund of this person's at a time
        reference = f"{ADMIN_REFUND_PREFIX}{reservation.id}:{key}"
        kept = (await still_drawn([paid_for])).get(paid_for, 0)
        if not await LedgerEntry.exists(reference=reference):
            if not 0 < coupons <= kept:
                raise Conflict(f"this seat kept {kept} coupons", code="refund_exceeds_kept")
            await post_entry(user_id=user_id, kind=LedgerKind.BOOKING_REFUND, amount=coupons,
                             reference=reference, now=now, paid_for=paid_for,
                             center_id=reservation.timeslot.program.center_id)  # type: ignore[attr-defined]
            await notify(user_id=user_id, type=REFUNDED, dedupe_key=f"{REFUNDED}:{reference}",
                         payload={"reservation_id": reservation.id, "refunded_coupons": coupons,
                                  "reason": reason}, clock=clock)
            kept -= coupons
        entry = await LedgerEntry.get(reference=reference)
    return AdminRefund(reservation.id, user_id, entry.amount, kept)
