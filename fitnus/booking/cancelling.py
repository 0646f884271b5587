"""Seats given back in a batch: a person's cancellation, and every seat of a
timeslot withdrawn by its owner or closed with its center. Runs inside the
batch's transaction, which holds the timeslot row and the wallets involved
(fitnus.booking.batches)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fitnus.booking import rules
from fitnus.booking.guards import change_seat_count, free_seat
from fitnus.booking.models import Reservation, ReservationStatus, seat_paid_for
from fitnus.booking.outcomes import CANCEL_RESERVATION, Decisions, event, failed, record, succeeded
from fitnus.centers.models import Timeslot
from fitnus.clock import as_utc
from fitnus.commands.models import Command
from fitnus.errors import Conflict, NotFound
from fitnus.keyed_queue import QueuedItem
from fitnus.notifications.models import Notification
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import post_entry

CANCELLED = "reservation.cancelled"
# A cancellation's refund in the ledger: this, then the reservation's id.
CANCELLATION_REFUND_PREFIX = "cancellation:"


async def _refund(reservation: Reservation, amount: int, *, center_id: int,
                  now: datetime) -> None:
    if amount:
        await post_entry(
            user_id=reservation.user_id,  # type: ignore[attr-defined]
            kind=LedgerKind.BOOKING_REFUND, amount=amount,
            reference=f"{CANCELLATION_REFUND_PREFIX}{reservation.id}", now=now,
            center_id=center_id,
            paid_for=seat_paid_for(reservation.command_id),
        )


async def cancellations(
    timeslot: Timeslot, items: list[QueuedItem], *, now: datetime, zone: ZoneInfo
) -> Decisions:
    commands: list[Command] = []
    notifications: list[Notification] = []
    center_id = timeslot.program.center_id  # type: ignore[attr-defined]
    freed = 0
    for item in items:
        command_id, user_id = item.payload["command_id"], item.payload["user_id"]
        reservation = await Reservation.get_or_none(
            id=item.payload["reservation_id"], user_id=user_id, timeslot_id=timeslot.id
        )
        if reservation is None:
            commands.append(failed(command_id, user_id, CANCEL_RESERVATION,
                                   rules.NOT_RESERVED, now))
            continue
        if reservation.status is ReservationStatus.CANCELLED:
            commands.append(succeeded(command_id, user_id, CANCEL_RESERVATION,
                                      {"reservation_id": reservation.id, "refunded_coupons": 0,
                                       "refund_reason": reservation.refund_reason}, now))
            continue
        if reservation.status in (ReservationStatus.ATTENDED, ReservationStatus.NO_SHOW):
            commands.append(failed(command_id, user_id, CANCEL_RESERVATION,
                                   rules.ALREADY_STARTED, now))
            continue
        cancelled_at = rules.accepted_at(item.payload, default=now)
        refund = await _refund_for(reservation, timeslot, cancelled_at=cancelled_at, zone=zone)
        if refund is None:
            commands.append(failed(command_id, user_id, CANCEL_RESERVATION,
                                   rules.ALREADY_STARTED, now))
            continue
        if not await free_seat(reservation, now=cancelled_at, refund_reason=refund.reason):
            # Moved away since it was read: nothing of it is left to cancel here.
            commands.append(failed(command_id, user_id, CANCEL_RESERVATION,
                                   rules.NOT_RESERVED, now))
            continue
        freed += 1
        await _refund(reservation, refund.coupons, center_id=center_id, now=now)
        result = {"reservation_id": reservation.id, "refunded_coupons": refund.coupons,
                  "refund_reason": refund.reason}
        commands.append(succeeded(command_id, user_id, CANCEL_RESERVATION, result, now))
        notifications.append(event(user_id, CANCELLED, {**result, "timeslot_id": timeslot.id},
                                   dedupe=command_id, now=now))
    if freed:
        await change_seat_count(timeslot, -freed)
    return await record(commands, notifications)


async def refund_quote(*, reservation_id: int, user_id: int, now: datetime,
                       zone: ZoneInfo) -> rules.Refund:
    """What cancelling a live reservation of ``user_id``'s at ``now`` would give
    back, for the person to see before confirming. The cancellation itself
    counts from when it is accepted, a moment later."""
    reservation = await Reservation.get_or_none(
        id=reservation_id, user_id=user_id, active=True).select_related("timeslot")
    if reservation is None:
        raise NotFound("no such live reservation", code="reservation_not_found")
    refund = await _refund_for(reservation, reservation.timeslot, cancelled_at=now, zone=zone)
    if refund is None:
        raise Conflict("the session has started", code=rules.ALREADY_STARTED)
    return refund


async def _refund_for(reservation: Reservation, timeslot: Timeslot, *, cancelled_at: datetime,
                      zone: ZoneInfo) -> rules.Refund | None:
    """The booking's own policy; the month's free late cancellation is looked
    up only for a late one. The batch holds the person's wallet, so two late
    cancellations of theirs in other timeslots' batches are decided one after
    the other and the second sees the first."""
    def refund(used: bool) -> rules.Refund | None:
        return rules.refund_for_cancellation(
            price=reservation.price_coupons, starts_at=timeslot.starts_at, now=cancelled_at,
            policy=reservation.cancellation_policy, late_cancel_used=used)

    first = refund(False)
    if first is None or first.reason != rules.FIRST_LATE_CANCEL_FREE:
        return first
    month = rules.Month.of(cancelled_at, zone)
    used = await Reservation.filter(
        user_id=reservation.user_id,  # type: ignore[attr-defined]
        refund_reason=rules.FIRST_LATE_CANCEL_FREE,
        cancelled_at__gte=as_utc(month.first_moment(zone)),
        cancelled_at__lt=as_utc(month.next().first_moment(zone)),
    ).exists()
    return refund(True) if used else first


async def withdrawal(timeslot: Timeslot, *, now: datetime) -> Decisions:
    """Every live reservation of a withdrawn timeslot cancelled with a full
    refund, whatever the 24 h rule says: the center called it off. Running it
    again finds nothing live and changes nothing."""
    if timeslot.withdrawal_reason is None:
        return Decisions()
    notifications: list[Notification] = []
    center_id = timeslot.program.center_id  # type: ignore[attr-defined]
    for reservation in await Reservation.filter(timeslot_id=timeslot.id, active=True):
        if not await free_seat(reservation, now=now, refund_reason=rules.CENTER_CLOSED):
            continue
        await _refund(reservation, reservation.price_coupons, center_id=center_id, now=now)
        notifications.append(event(
            reservation.user_id,  # type: ignore[attr-defined]
            CANCELLED,
            {"reservation_id": reservation.id, "refunded_coupons": reservation.price_coupons,
             "refund_reason": rules.CENTER_CLOSED, "timeslot_id": timeslot.id,
             "reason": timeslot.withdrawal_reason.value},
            dedupe=f"withdrawn:{reservation.id}", now=now,
        ))
    if notifications:
        await change_seat_count(timeslot, -len(notifications))
    return await record([], notifications)
