"""A session's waitlist as one batch of its keyed queue decides it: freed
places offered to the line in order, claims, leaves and expiries. The batch
holds the session's row (joins take it too, so the line cannot change under
the batch) and the wallets of everyone it may touch, locked up front in user
order (``people_to_lock``). Every end of an entry is a conditional UPDATE on
its status, so an offer ends once, however a claim and its expiry race.

Written once for timeslots and meetups: each brings a ``WaitedFor``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from tortoise.expressions import F
from tortoise.models import Model

from fitnus.booking import rules
from fitnus.booking.conflicts import busy_people
from fitnus.booking.outcomes import Decisions, event, failed, record, succeeded
from fitnus.commands.models import Command
from fitnus.keyed_queue import QueuedItem
from fitnus.notifications.models import Notification
from fitnus.waitlist.models import WaitlistEntry, WaitlistStatus
from fitnus.waitlist.rules import ClaimWindows, claims_automatically
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import (
    InsufficientCoupons,
    capture_hold,
    hold_coupons,
    post_entry,
    release_hold,
)

# Queued into the session's keyed queue: a person's claim and leave, and the
# service's own sweep (expired offers end, free places are offered), sent by
# the expiry job and after a move frees a seat elsewhere.
CLAIM_OFFER = "claim_offer"
LEAVE_WAITLIST = "leave_waitlist"
SWEEP_WAITLIST = "sweep_waitlist"
WAITLIST_KINDS = frozenset({CLAIM_OFFER, LEAVE_WAITLIST, SWEEP_WAITLIST})

OFFER_EXPIRED = "offer_expired"
NOT_OFFERED = "not_offered"
WAITLIST_NOT_FOUND = "waitlist_not_found"
NOT_ADMITTED = "not_admitted"
REFUSALS = {
    OFFER_EXPIRED: "the offer has ended",
    NOT_OFFERED: "no place has been offered to you yet",
    WAITLIST_NOT_FOUND: "no such waitlist entry",
    rules.SCHEDULE_CONFLICT: "you hold another session at that time",
    NOT_ADMITTED: "you may no longer take a place here (you left the club)",
}
# Why an entry ended without a seat.
EXPIRED = "expired"
CLOSED = "closed"

POSITION_CHANGED = "waitlist.position_changed"
OFFERED = "waitlist.offered"
OFFER_ENDED = "waitlist.offer_expired"
CLAIMED = "waitlist.claimed"


def held_for(entry: WaitlistEntry) -> str:
    """What an offer's hold is drawn for, until it is claimed or released."""
    return f"waitlist:{entry.id}"


class WaitedFor(Protocol):
    """A timeslot or a meetup, as its batch holds it locked."""

    # The waitlist's column for it: "timeslot_id" or "meetup_id".
    column: str
    # The notification a seat taken from the waitlist sends, as a booking's.
    seated_event: str

    @property
    def id(self) -> int: ...

    @property
    def price(self) -> int: ...

    @property
    def starts_at(self) -> datetime: ...

    @property
    def ends_at(self) -> datetime: ...

    @property
    def center_id(self) -> int | None: ...

    @property
    def full_refund_hours(self) -> int: ...

    @property
    def offered(self) -> int: ...

    def free(self) -> int:
        """Places nobody holds and nobody is offered."""

    def is_open(self, now: datetime) -> bool: ...

    async def admits(self, user_id: int) -> bool:
        """Whether the person may still take a place (a meetup's: a member)."""

    async def change_offered(self, change: int) -> None:
        """Places kept for offers: + when offered, - when an offer ends unclaimed."""

    async def seat(self, user_id: int, *, command_id: str, now: datetime,
                   from_offer: bool) -> int:
        """A confirmed seat for the person, counted (an offered place turned
        into a seat, or a free one taken); its id."""

    def seat_result(self, seat_id: int) -> dict[str, Any]: ...

    def paid_for(self, command_id: str) -> str:
        """What the coupons of a seat taken by ``command_id`` are drawn for."""
        ...


class Offering(Protocol):
    id: int
    offered: int


async def keep_offered(model: type[Model], row: Offering, change: int, *, taken: str) -> None:
    """For ``WaitedFor.change_offered``: places kept for offers, never below
    zero nor past the capacity less the places ``taken`` (a column)."""
    kept = await model.filter(
        id=row.id, offered__gte=-change, offered__lte=F("capacity") - (F(taken) + change),
    ).update(offered=F("offered") + change)
    if kept != 1:
        raise RuntimeError(f"{model.__name__} {row.id}: {change:+} offered breaks its bounds")
    row.offered += change


class Waitlist:
    """The line of one session, read once by the batch that holds it."""

    def __init__(self, place: WaitedFor, entries: list[WaitlistEntry],
                 windows: ClaimWindows) -> None:
        self.place = place
        self.windows = windows
        self.waiting = [entry for entry in entries if entry.status is WaitlistStatus.WAITING]
        self.offers = {entry.id: entry for entry in entries
                       if entry.status is WaitlistStatus.OFFERED}
        self._positions = {entry.id: index for index, entry in enumerate(self.waiting)}

    @classmethod
    async def of(cls, place: WaitedFor, windows: ClaimWindows) -> Waitlist:
        return cls(place, await WaitlistEntry.filter(
            **{place.column: place.id}, active=True).order_by("id"), windows)

    def people_to_lock(self) -> set[int]:
        """Whose wallets the batch may change here: everyone in the line. Not
        just its front: people passed over (no coupons, left the club) send an
        offer further back, and a wallet locked late, out of user order, can
        deadlock against another session's batch."""
        return {entry.user_id  # type: ignore[attr-defined]
                for entry in (*self.offers.values(), *self.waiting)}

    # --- Offers -------------------------------------------------------------------

    async def offer_free_places(self, now: datetime) -> Decisions:
        """Every free place to the front of the line, before any new booking
        can take it; nothing in the last minutes before the start."""
        if not self.waiting or self.place.free() <= 0 or not self.place.is_open(now):
            return Decisions()
        expires_at = self.windows.offer_expires_at(starts_at=self.place.starts_at, now=now)
        if expires_at is None:
            return Decisions()
        notifications: list[Notification] = []
        while self.waiting and self.place.free() > 0:
            entry = self.waiting.pop(0)
            if not await self.place.admits(entry.user_id):  # type: ignore[attr-defined]
                notifications += await self._end(entry, WaitlistStatus.EXPIRED, now=now,
                                                 reason=NOT_ADMITTED)
            elif entry.auto_claim and claims_automatically(
                    starts_at=self.place.starts_at, now=now,
                    full_refund_hours=self.place.full_refund_hours):
                notifications += await self._seat_at_once(entry, now=now)
            else:
                notifications += await self._offer(entry, expires_at=expires_at, now=now)
        return await record([], notifications)

    async def _offer(self, entry: WaitlistEntry, *, expires_at: datetime,
                     now: datetime) -> list[Notification]:
        price = self.place.price
        user_id: int = entry.user_id  # type: ignore[attr-defined]
        if await busy_people([user_id], starts_at=self.place.starts_at,
                             ends_at=self.place.ends_at):
            # A seat here or one overlapping it, booked meanwhile: an offer
            # they could not claim would only keep the seat from the next.
            return await self._end(entry, WaitlistStatus.EXPIRED, now=now,
                                   reason=rules.SCHEDULE_CONFLICT)
        if price and not await hold_coupons(user_id=user_id, amount=price,
                                            held_for=held_for(entry), now=now):
            return await self._end(entry, WaitlistStatus.EXPIRED, now=now,
                                   reason=rules.INSUFFICIENT_COUPONS)
        offered = await WaitlistEntry.filter(id=entry.id, status=WaitlistStatus.WAITING).update(
            status=WaitlistStatus.OFFERED, offered_at=now, offer_expires_at=expires_at,
            held_coupons=price)
        if offered != 1:
            raise RuntimeError(f"waitlist entry {entry.id} changed under its session's lock")
        entry.status, entry.offer_expires_at, entry.held_coupons = (
            WaitlistStatus.OFFERED, expires_at, price)
        await self.place.change_offered(1)
        self.offers[entry.id] = entry
        return [event(user_id, OFFERED, {
            "waitlist_id": entry.id, self.place.column: self.place.id,
            "offer_expires_at": expires_at.isoformat(), "held_coupons": price,
        }, dedupe=str(entry.id), now=now)]

    async def _seat_at_once(self, entry: WaitlistEntry, *, now: datetime) -> list[Notification]:
        """Auto-claim: the place is theirs if they can pay, as a booking would be."""
        user_id: int = entry.user_id  # type: ignore[attr-defined]
        if await busy_people([user_id], starts_at=self.place.starts_at,
                             ends_at=self.place.ends_at):
            return await self._end(entry, WaitlistStatus.EXPIRED, now=now,
                                   reason=rules.SCHEDULE_CONFLICT)
        command_id = str(uuid.uuid4())
        if self.place.price:
            try:
                await post_entry(user_id=user_id, kind=LedgerKind.BOOKING_DEBIT,
                                 amount=-self.place.price, reference=f"waitlist:{entry.id}",
                                 now=now, center_id=self.place.center_id,
                                 paid_for=self.place.paid_for(command_id))
            except InsufficientCoupons:
                return await self._end(entry, WaitlistStatus.EXPIRED, now=now,
                                       reason=rules.INSUFFICIENT_COUPONS)
        seat_id = await self.place.seat(user_id, command_id=command_id, now=now,
                                        from_offer=False)
        await self._end(entry, WaitlistStatus.CLAIMED, now=now, seat_id=seat_id)
        payload = {"waitlist_id": entry.id, self.place.column: self.place.id,
                   **self.place.seat_result(seat_id)}
        return [event(user_id, self.place.seated_event, payload, dedupe=command_id, now=now),
                event(user_id, CLAIMED, payload, dedupe=str(entry.id), now=now)]

    async def _end(self, entry: WaitlistEntry, status: WaitlistStatus, *, now: datetime,
                   reason: str | None = None, seat_id: int | None = None,
                   ) -> list[Notification]:
        """End a live entry once, whoever gets there first; an offer's hold is
        released unless the claim spent it."""
        was = entry.status
        ended = await WaitlistEntry.filter(id=entry.id, active=True, status=was).update(
            status=status, active=None, ended_at=now, end_reason=reason, seat_id=seat_id)
        if ended != 1:
            raise RuntimeError(f"waitlist entry {entry.id} changed under its session's lock")
        entry.status = status
        self.offers.pop(entry.id, None)
        if was is not WaitlistStatus.OFFERED or status is WaitlistStatus.CLAIMED:
            return self._told_of_end(entry, status, reason, now=now)
        if entry.held_coupons:
            await release_hold(user_id=entry.user_id,  # type: ignore[attr-defined]
                               amount=entry.held_coupons, held_for=held_for(entry), now=now)
        await self.place.change_offered(-1)
        return self._told_of_end(entry, status, reason, now=now)

    def _told_of_end(self, entry: WaitlistEntry, status: WaitlistStatus, reason: str | None,
                     *, now: datetime) -> list[Notification]:
        if status is not WaitlistStatus.EXPIRED:
            return []
        return [event(entry.user_id, OFFER_ENDED,  # type: ignore[attr-defined]
                      {"waitlist_id": entry.id, self.place.column: self.place.id,
                       "reason": reason}, dedupe=str(entry.id), now=now)]

    # --- Queued commands ------------------------------------------------------------

    async def decide(self, kind: str, items: Sequence[QueuedItem], *, now: datetime
                     ) -> Decisions:
        """A run of one kind of waitlist command, in queue order."""
        if kind == SWEEP_WAITLIST:
            sent = max(rules.accepted_at(item.payload, default=now) for item in items)
            return await record([], await self.end_expired(now=now, expired_by=sent))
        commands: list[Command] = []
        notifications: list[Notification] = []
        for item in items:
            command, told = await (self._claim(item, now=now) if kind == CLAIM_OFFER
                                   else self._leave(item, now=now))
            commands.append(command)
            notifications += told
        return await record(commands, notifications)

    async def _claim(self, item: QueuedItem, *, now: datetime
                     ) -> tuple[Command, list[Notification]]:
        command_id, user_id = item.payload["command_id"], item.payload["user_id"]
        entry = await self._entry_of(item)
        if entry is None or entry.status is WaitlistStatus.LEFT:
            return self._failed(command_id, user_id, CLAIM_OFFER, WAITLIST_NOT_FOUND, now), []
        if entry.status is WaitlistStatus.CLAIMED and entry.seat_id is not None:
            return succeeded(command_id, user_id, CLAIM_OFFER,
                             self.place.seat_result(entry.seat_id), now), []
        if entry.status is WaitlistStatus.WAITING:
            return self._failed(command_id, user_id, CLAIM_OFFER, NOT_OFFERED, now), []
        claimed_at = rules.accepted_at(item.payload, default=now)
        if entry.status is not WaitlistStatus.OFFERED:
            return self._failed(command_id, user_id, CLAIM_OFFER, OFFER_EXPIRED, now), []
        if entry.offer_expires_at is None or claimed_at >= entry.offer_expires_at:
            told = await self._end(entry, WaitlistStatus.EXPIRED, now=now, reason=EXPIRED)
            return self._failed(command_id, user_id, CLAIM_OFFER, OFFER_EXPIRED, now), told
        if not await self.place.admits(user_id):
            told = await self._end(entry, WaitlistStatus.EXPIRED, now=now, reason=NOT_ADMITTED)
            return self._failed(command_id, user_id, CLAIM_OFFER, NOT_ADMITTED, now), told
        if await busy_people([user_id], starts_at=self.place.starts_at,
                             ends_at=self.place.ends_at):
            # The offer stands: they may free the other session and claim again.
            return self._failed(command_id, user_id, CLAIM_OFFER, rules.SCHEDULE_CONFLICT,
                                now), []
        if entry.held_coupons:
            await capture_hold(user_id=user_id, amount=entry.held_coupons,
                               kind=LedgerKind.BOOKING_DEBIT, reference=f"waitlist:{entry.id}",
                               held_for=held_for(entry), paid_for=self.place.paid_for(command_id),
                               now=now, center_id=self.place.center_id)
        seat_id = await self.place.seat(user_id, command_id=command_id, now=now,
                                        from_offer=True)
        await self._end(entry, WaitlistStatus.CLAIMED, now=now, seat_id=seat_id)
        result = self.place.seat_result(seat_id)
        return succeeded(command_id, user_id, CLAIM_OFFER, result, now), [
            event(user_id, self.place.seated_event,
                  {"waitlist_id": entry.id, self.place.column: self.place.id,
                   "command_id": command_id, **result}, dedupe=command_id, now=now)]

    async def _leave(self, item: QueuedItem, *, now: datetime
                     ) -> tuple[Command, list[Notification]]:
        """Leaving the line, or declining an offer; leaving twice is fine."""
        command_id, user_id = item.payload["command_id"], item.payload["user_id"]
        entry = await self._entry_of(item)
        if entry is None:
            return self._failed(command_id, user_id, LEAVE_WAITLIST, WAITLIST_NOT_FOUND,
                                now), []
        if entry.status in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
            if entry.status is WaitlistStatus.WAITING:
                self.waiting.remove(entry)
            await self._end(entry, WaitlistStatus.LEFT, now=now)
        return succeeded(command_id, user_id, LEAVE_WAITLIST,
                         {"waitlist_id": entry.id, "status": entry.status.value}, now), []

    async def _entry_of(self, item: QueuedItem) -> WaitlistEntry | None:
        """The live one as this batch holds it, or an ended one as stored."""
        entry_id = item.payload["waitlist_id"]
        for entry in (*self.waiting, *self.offers.values()):
            if entry.id == entry_id:
                return entry if entry.user_id == item.payload["user_id"] else None  # type: ignore[attr-defined]
        return await WaitlistEntry.filter(**{self.place.column: self.place.id}).get_or_none(
            id=entry_id, user_id=item.payload["user_id"])

    def _failed(self, command_id: str, user_id: int, kind: str, code: str,
                now: datetime) -> Command:
        return failed(command_id, user_id, kind, code, now, detail=REFUSALS[code])

    async def end_expired(self, *, now: datetime, expired_by: datetime | None = None,
                          ) -> list[Notification]:
        """Offers whose window ended by ``expired_by`` (when the sweep was
        sent: a claim queued before it was in time); the waiting once no offer
        can come; every live entry once the session has started or closed."""
        expired_by = expired_by or now
        told: list[Notification] = []
        for entry in [entry for entry in self.offers.values() if entry.offer_expires_at
                      is not None and entry.offer_expires_at <= expired_by]:
            told += await self._end(entry, WaitlistStatus.EXPIRED, now=now, reason=EXPIRED)
        closed = not self.place.is_open(now)
        if closed or self.windows.offer_expires_at(starts_at=self.place.starts_at,
                                                   now=now) is None:
            # Offers made before then run to their own end, unless it is over.
            for entry in [*self.waiting, *(self.offers.values() if closed else ())]:
                told += await self._end(entry, WaitlistStatus.EXPIRED, now=now, reason=CLOSED)
            self.waiting.clear()
        return told

    async def positions_told(self, *, now: datetime) -> Decisions:
        """At the end of the batch: everyone still waiting whose place in line changed."""
        return await record([], [
            event(entry.user_id, POSITION_CHANGED,  # type: ignore[attr-defined]
                  {"waitlist_id": entry.id, self.place.column: self.place.id,
                   "position": index + 1}, dedupe=f"{entry.id}:{index + 1}", now=now)
            for index, entry in enumerate(self.waiting)
            if self._positions.get(entry.id, index) != index
        ])
