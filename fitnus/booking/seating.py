"""Seats taken in a batch: new bookings, and moves into this timeslot from
another one. Runs inside the batch's transaction, which holds the timeslot
rows and the wallets involved (fitnus.booking.batches)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from fitnus.booking import rules
from fitnus.booking.conflicts import busy_people
from fitnus.booking.guards import change_seat_count, free_seat
from fitnus.booking.models import Reservation, ReservationStatus, seat_paid_for
from fitnus.booking.outcomes import (
    MOVE_RESERVATION,
    RESERVE_SEAT,
    Decisions,
    event,
    failed,
    record,
    succeeded,
)
from fitnus.centers.models import Timeslot
from fitnus.commands.models import Command
from fitnus.keyed_queue import QueuedItem
from fitnus.notifications.models import Notification
from fitnus.wallet.lots import pass_draws
from fitnus.wallet.models import LedgerKind, Wallet
from fitnus.wallet.service import debit_locked, lock_wallets, post_entry


def open_for_booking(timeslot: Timeslot, *, now: datetime) -> bool:
    """Web processes remember timeslots for a while: a request may be queued
    after its center was deleted or the timeslot withdrawn."""
    return (timeslot.starts_at > now and timeslot.withdrawn_at is None
            and timeslot.program.center.deleted_at is None)


async def seats(timeslot: Timeslot, items: list[QueuedItem], *, now: datetime,
                wallets: dict[int, Wallet] | None = None) -> Decisions:
    """Bookings in queue order. ``wallets``: these people's wallets as the
    batch locked them, if nothing changed them since."""
    requests = [
        rules.SeatRequest(item.position, item.payload["command_id"], item.payload["user_id"])
        for item in items
    ]
    users = {request.user_id for request in requests}
    price = timeslot.program.price_coupons
    if wallets is None:
        # Held since the start of the batch; read again for what earlier runs changed.
        wallets = await lock_wallets(users, now=now)
    decisions = rules.decide_seats(
        requests,
        seats_left=timeslot.capacity - timeslot.reserved - timeslot.offered,
        price=price,
        available={user: wallet.balance - wallet.held for user, wallet in wallets.items()},
        holders={
            reservation.user_id  # type: ignore[attr-defined]
            for reservation in await Reservation.filter(
                timeslot_id=timeslot.id, user_id__in=users, active=True
            )
        },
        conflicting=await busy_people(users, starts_at=timeslot.starts_at,
                                      ends_at=timeslot.ends_at, except_timeslot=timeslot.id),
        is_open=open_for_booking(timeslot, now=now),
    )
    decided = await _apply_seats(timeslot, decisions, price=price, now=now, wallets=wallets)
    seated = sum(1 for decision in decisions if decision.confirmed)
    if seated:
        await change_seat_count(timeslot, seated)
    return decided


async def _apply_seats(
    timeslot: Timeslot, decisions: list[rules.SeatDecision], *, price: int, now: datetime,
    wallets: dict[int, Wallet],
) -> Decisions:
    """Write the batch's decisions in a few statements, whatever its size: the
    first batch of a flash crowd holds the timeslot's lock while it writes."""
    seated = [decision.request for decision in decisions if decision.confirmed]
    if seated and price > 0:  # a free session moves no coupons
        await debit_locked(
            [(wallets[request.user_id], seat_paid_for(request.command_id))
             for request in seated],
            amount=price, kind=LedgerKind.BOOKING_DEBIT, now=now,
            center_id=timeslot.program.center_id,  # type: ignore[attr-defined]
        )
    reservation_ids: dict[str, int] = {}
    if seated:
        await Reservation.bulk_create([
            new_reservation(timeslot, request.user_id, request.command_id, price=price, now=now)
            for request in seated
        ])
        # bulk_create returns no ids on MySQL: the command id finds them.
        reservation_ids = {
            str(command_id): reservation_id for command_id, reservation_id in
            await Reservation.filter(
                command_id__in=[request.command_id for request in seated]
            ).values_list("command_id", "id")
        }
    commands: list[Command] = []
    notifications: list[Notification] = []
    for decision in decisions:
        request = decision.request
        if decision.confirmed:
            reservation_id = reservation_ids[str(request.command_id)]
            commands.append(succeeded(request.command_id, request.user_id, RESERVE_SEAT,
                                      {"reservation_id": reservation_id}, now))
            notifications.append(event(request.user_id, "reservation.confirmed", {
                "reservation_id": reservation_id, "timeslot_id": timeslot.id,
                "command_id": request.command_id}, dedupe=request.command_id, now=now))
        else:
            commands.append(failed(request.command_id, request.user_id, RESERVE_SEAT,
                                   decision.outcome, now))
            notifications.append(event(request.user_id, "reservation.rejected", {
                "timeslot_id": timeslot.id, "command_id": request.command_id,
                "code": decision.outcome}, dedupe=request.command_id, now=now))
    return await record(commands, notifications)


def new_reservation(timeslot: Timeslot, user_id: int, command_id: str, *, price: int,
                 now: datetime) -> Reservation:
    """A confirmed seat, under the center's cancellation policy of now."""
    return Reservation(
        user_id=user_id, timeslot_id=timeslot.id, status=ReservationStatus.CONFIRMED,
        active=True, price_coupons=price, starts_at=timeslot.starts_at,
        ends_at=timeslot.ends_at, command_id=command_id, created_at=now,
        **rules.policy_snapshot(timeslot.program.center.cancellation_policy),
    )


async def moves(timeslot: Timeslot, items: list[QueuedItem], *, now: datetime,
                locked: dict[int, Timeslot]) -> Decisions:
    """Moves into this timeslot, one at a time (they are few). ``locked`` holds
    every timeslot row the batch locked, the moves' old ones included; their
    seat counts change once, at the end of the run, in id order."""
    decided = Decisions()
    left: Counter[int] = Counter()
    for item in items:
        seats_left = timeslot.capacity - timeslot.reserved - timeslot.offered - left.total()
        moved_from = await move(timeslot, item, now=now, seats_left=seats_left,
                                decided=decided)
        if moved_from is not None:
            left[moved_from] += 1
    if left:
        changes = {timeslot.id: left.total(), **{old: -count for old, count in left.items()}}
        for timeslot_id in sorted(changes):
            await change_seat_count(locked[timeslot_id], changes[timeslot_id])
    decided.freed |= set(left)
    return decided


async def move(timeslot: Timeslot, item: QueuedItem, *, now: datetime, seats_left: int,
               decided: Decisions) -> int | None:
    """One decision: the new seat taken and the old one freed, with the price
    difference charged or refunded, in this transaction; or nothing changed.
    Returns the timeslot the person left, if they moved."""
    command_id, user_id = item.payload["command_id"], item.payload["user_id"]
    old = await Reservation.get_or_none(id=item.payload["reservation_id"], user_id=user_id,
                                        active=True)
    price = timeslot.program.price_coupons
    wallet = await Wallet.get(user_id=user_id)
    outcome = rules.decide_move(rules.MoveFacts(
        old_starts_at=None if old is None else old.starts_at,
        accepted_at=rules.accepted_at(item.payload, default=now),
        target_open=open_for_booking(timeslot, now=now),
        holds_target=await Reservation.exists(timeslot_id=timeslot.id, user_id=user_id,
                                              active=True),
        conflicting=old is not None and bool(await busy_people(
            [user_id], starts_at=timeslot.starts_at, ends_at=timeslot.ends_at,
            except_timeslot=timeslot.id, except_reservation=old.id)),
        seats_left=seats_left,
        available=wallet.balance - wallet.held,
        price_difference=price - (0 if old is None else old.price_coupons),
        full_refund_hours=(rules.REFUND_WINDOW_HOURS if old is None
                           else old.policy_full_refund_hours),
    ))
    if outcome == rules.CONFIRMED and old is not None and not await free_seat(old, now=now):
        outcome = rules.NOT_RESERVED
    if outcome != rules.CONFIRMED or old is None:
        decided.add(await record(
            [failed(command_id, user_id, MOVE_RESERVATION, outcome, now)],
            [event(user_id, "reservation.move_rejected", {
                "reservation_id": item.payload["reservation_id"], "timeslot_id": timeslot.id,
                "command_id": command_id, "code": outcome}, dedupe=command_id, now=now)],
        ))
        return None
    new = new_reservation(timeslot, user_id, command_id, price=price, now=now)
    await new.save()
    # The old seat's coupons pay for the new one; the difference is charged
    # or refunded on top.
    await pass_draws(paid_for=seat_paid_for(old.command_id), to=seat_paid_for(command_id))
    difference = price - old.price_coupons
    if difference:
        await post_entry(
            user_id=user_id, amount=-difference, reference=f"move:{command_id}", now=now,
            kind=LedgerKind.BOOKING_DEBIT if difference > 0 else LedgerKind.BOOKING_REFUND,
            center_id=timeslot.program.center_id,  # type: ignore[attr-defined]
            paid_for=seat_paid_for(command_id),
        )
    result = {"reservation_id": new.id, "moved_from": old.id,
              "charged_coupons": max(difference, 0), "refunded_coupons": max(-difference, 0)}
    decided.add(await record(
        [succeeded(command_id, user_id, MOVE_RESERVATION, result, now)],
        [event(user_id, "reservation.moved", {**result, "timeslot_id": timeslot.id,
                                              "command_id": command_id},
               dedupe=command_id, now=now)],
    ))
    moved_from: int = old.timeslot_id  # type: ignore[attr-defined]
    return moved_from
