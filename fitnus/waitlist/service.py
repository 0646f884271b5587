"""The waitlist as people use it: join a sold-out session's line, see where
they stand, claim an offered place, leave. A join takes the session's row
lock, so it waits for a batch deciding that session and sees what it
committed; everything after the join is decided in the session's keyed
queue (fitnus.waitlist.offers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fitnus.accounts.tokens import Principal
from fitnus.booking import rules
from fitnus.booking.models import Reservation
from fitnus.booking.seating import open_for_booking
from fitnus.booking.service import timeslot_queue
from fitnus.centers.models import Timeslot
from fitnus.clock import Clock
from fitnus.clubs.meetups import meetup_of_member, meetup_queue
from fitnus.clubs.models import Meetup, MeetupAttendee
from fitnus.commands.queued import CommandQueue, Queued, ScheduleDrain, send_to_each
from fitnus.errors import Conflict, NotFound
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient
from fitnus.waitlist.models import WaitlistEntry, WaitlistStatus
from fitnus.waitlist.offers import (
    CLAIM_OFFER,
    LEAVE_WAITLIST,
    NOT_OFFERED,
    OFFER_EXPIRED,
    REFUSALS,
    SWEEP_WAITLIST,
    WAITLIST_NOT_FOUND,
)
from fitnus.waitlist.rules import ClaimWindows

NOT_SOLD_OUT = "not_sold_out"
ALREADY_WAITING = "already_waiting"
# The most recent entries a person sees.
MY_ENTRIES = 100


class WaitlistRefused(Conflict):
    """A join or claim refused for one of the waitlist's codes."""


@dataclass(frozen=True)
class Placed:
    """An entry and, while waiting, its place in line (1 is next)."""

    entry: WaitlistEntry
    position: int | None


async def join_timeslot_waitlist(*, principal: Principal, timeslot_id: int,
                                 auto_claim: bool, clock: Clock) -> Placed:
    now = clock.now()
    async with in_transaction():
        timeslot = await Timeslot.select_for_update().get_or_none(id=timeslot_id)
        if timeslot is None:
            raise NotFound("no such timeslot", code="timeslot_not_found")
        await timeslot.fetch_related("program__center")
        if not open_for_booking(timeslot, now=now):
            raise WaitlistRefused("this session has started", code=rules.TIMESLOT_CLOSED)
        holds = await Reservation.exists(timeslot_id=timeslot.id, user_id=principal.user_id,
                                         active=True)
        free = timeslot.capacity - timeslot.reserved - timeslot.offered
        entry = await _join(principal, holds=holds, free=free, auto_claim=auto_claim,
                            now=now, timeslot_id=timeslot.id, meetup_id=None)
    return await _placed(entry)


async def join_meetup_waitlist(*, principal: Principal, meetup_id: int, auto_claim: bool,
                               clock: Clock) -> Placed:
    now = clock.now()
    await meetup_of_member(principal, meetup_id)
    async with in_transaction():
        meetup = await Meetup.select_for_update().get(id=meetup_id)
        if meetup.starts_at <= now:
            raise WaitlistRefused("this meetup has started", code="meetup_closed")
        holds = await MeetupAttendee.exists(meetup_id=meetup.id, user_id=principal.user_id,
                                            active=True)
        free = meetup.capacity - meetup.joined - meetup.offered
        entry = await _join(principal, holds=holds, free=free, auto_claim=auto_claim,
                            now=now, timeslot_id=None, meetup_id=meetup.id)
    return await _placed(entry)


async def _join(principal: Principal, *, holds: bool, free: int, auto_claim: bool,
                now: datetime, timeslot_id: int | None, meetup_id: int | None,
                ) -> WaitlistEntry:
    """Under the session's row lock: a line forms only where nothing is free."""
    if holds:
        raise WaitlistRefused("you already hold a place in this session",
                              code=rules.ALREADY_RESERVED)
    if free > 0:
        raise WaitlistRefused("a place is free: book it instead", code=NOT_SOLD_OUT)
    try:
        async with in_transaction():  # a savepoint, undone with the duplicate below
            return await WaitlistEntry.create(
                user_id=principal.user_id, status=WaitlistStatus.WAITING, active=True,
                auto_claim=auto_claim, joined_at=now, timeslot_id=timeslot_id,
                meetup_id=meetup_id)
    except IntegrityError:
        raise WaitlistRefused("you are in this line already", code=ALREADY_WAITING) from None


async def _placed(entry: WaitlistEntry) -> Placed:
    return (await placed([entry]))[0]


async def placed(entries: Iterable[WaitlistEntry]) -> list[Placed]:
    """Each waiting entry's place: one more than those waiting ahead of it."""
    entries = list(entries)
    ahead: dict[int, int] = {}
    for entry in entries:
        if entry.status is WaitlistStatus.WAITING:
            session = {"timeslot_id": entry.timeslot_id,  # type: ignore[attr-defined]
                       "meetup_id": entry.meetup_id}  # type: ignore[attr-defined]
            ahead[entry.id] = await WaitlistEntry.filter(
                **session, active=True, status=WaitlistStatus.WAITING, id__lt=entry.id,
            ).count()
    return [Placed(entry, None if entry.id not in ahead else ahead[entry.id] + 1)
            for entry in entries]


async def entries_of(user_id: int) -> list[Placed]:
    """A person's most recent entries, newest first."""
    return await placed(await WaitlistEntry.filter(user_id=user_id).order_by("-id")
                        .limit(MY_ENTRIES))


async def _own_entry(principal: Principal, entry_id: int) -> WaitlistEntry:
    entry = await WaitlistEntry.get_or_none(id=entry_id, user_id=principal.user_id)
    if entry is None:
        raise NotFound(REFUSALS[WAITLIST_NOT_FOUND], code=WAITLIST_NOT_FOUND)
    return entry


@dataclass(frozen=True, kw_only=True)
class WaitlistDesk:
    """The queues a claim or a leave goes into: its session's."""

    timeslots: CommandQueue
    meetups: CommandQueue

    async def _send(self, entry: WaitlistEntry, *, kind: str, user_id: int) -> Queued:
        timeslot_id: int | None = entry.timeslot_id  # type: ignore[attr-defined]
        queue, key = ((self.timeslots, timeslot_id) if timeslot_id is not None
                      else (self.meetups, entry.meetup_id))  # type: ignore[attr-defined]
        return await queue.send(key, kind=kind, user_id=user_id, waitlist_id=entry.id)

    async def request_claim(self, *, principal: Principal, entry_id: int,
                            idempotency_key: str | None) -> Queued:
        """Into the session's queue, behind whatever is there; what can no
        longer change is answered at once."""
        async def accept() -> Queued:
            entry = await _own_entry(principal, entry_id)
            if entry.status is WaitlistStatus.LEFT:
                raise NotFound(REFUSALS[WAITLIST_NOT_FOUND], code=WAITLIST_NOT_FOUND)
            if entry.status is WaitlistStatus.EXPIRED:
                raise WaitlistRefused(REFUSALS[OFFER_EXPIRED], code=OFFER_EXPIRED)
            if entry.status is WaitlistStatus.WAITING:
                raise WaitlistRefused(REFUSALS[NOT_OFFERED], code=NOT_OFFERED)
            return await self._send(entry, kind=CLAIM_OFFER, user_id=principal.user_id)

        return await self.timeslots.first_answer(principal, idempotency_key, accept)

    async def request_leave(self, *, principal: Principal, entry_id: int) -> Queued | None:
        """Leave the line or decline the offer; None if the entry has ended already."""
        entry = await _own_entry(principal, entry_id)
        if not entry.active:
            return None
        return await self._send(entry, kind=LEAVE_WAITLIST, user_id=principal.user_id)


async def sweep_waitlists(
    *, redis: RedisClient, keys: Keys, clock: Clock, windows: ClaimWindows,
    schedule_timeslot_drain: ScheduleDrain, schedule_meetup_drain: ScheduleDrain,
) -> None:
    """Each session whose line needs it gets a sweep in its own queue, in line
    with the claims there: an offer ends once, by claim or by expiry."""
    now = clock.now()
    timeslots, meetups = await sessions_to_sweep(now=now, windows=windows)
    await send_to_each(timeslot_queue(redis, keys), timeslots, kind=SWEEP_WAITLIST,
                       schedule_drain=schedule_timeslot_drain, accepted_at=now.timestamp())
    await send_to_each(meetup_queue(redis, keys), meetups, kind=SWEEP_WAITLIST,
                       schedule_drain=schedule_meetup_drain, accepted_at=now.timestamp())


async def sessions_to_sweep(*, now: datetime, windows: ClaimWindows
                            ) -> tuple[set[int], set[int]]:
    """Timeslots and meetups whose line needs its queue's sweep: an offer
    past its window, a line that can get no more offers, or a free place
    while people wait (freed outside the queue, or its sweep was lost)."""
    async def sessions(**where: object) -> tuple[set[int], set[int]]:
        found = await WaitlistEntry.filter(**where).distinct().values_list(
            "timeslot_id", "meetup_id")
        return ({timeslot_id for timeslot_id, _ in found if timeslot_id is not None},
                {meetup_id for _, meetup_id in found if meetup_id is not None})

    timeslots, meetups = await sessions(status=WaitlistStatus.OFFERED,
                                        offer_expires_at__lte=now)
    waited_timeslots, waited_meetups = await sessions(status=WaitlistStatus.WAITING)
    closing = now + windows.offers_stop
    for timeslot in await Timeslot.filter(id__in=waited_timeslots).prefetch_related(
            "program__center"):
        if (not open_for_booking(timeslot, now=now) or timeslot.starts_at <= closing
                or timeslot.capacity > timeslot.reserved + timeslot.offered):
            timeslots.add(timeslot.id)
    for meetup in await Meetup.filter(id__in=waited_meetups):
        if meetup.starts_at <= closing or meetup.capacity > meetup.joined + meetup.offered:
            meetups.add(meetup.id)
    return timeslots, meetups
