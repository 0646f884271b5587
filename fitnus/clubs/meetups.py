"""Club meetups: the leader publishes them, members join and leave through the
meetup's keyed queue, decided in batches exactly as timeslot bookings are
(the same queue, drain loop, fence, wallet locks and seat rule), so meetups
and reservations never overlap for one person and a fee is paid once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.accounts.tokens import Principal
from fitnus.booking import rules
from fitnus.booking.conflicts import busy_people
from fitnus.booking.guards import advance_fence
from fitnus.booking.outcomes import (
    DecidedBatch,
    Decisions,
    event,
    failed,
    giving_up,
    record,
    split_decided,
    succeeded,
)
from fitnus.booking.sold_out import SoldOutMemory, flag_fullness
from fitnus.clock import Clock, as_utc
from fitnus.clubs.models import ClubMember, Meetup, MeetupAttendee, place_paid_for
from fitnus.clubs.service import club_by_id, led_club, require_member
from fitnus.commands.models import Command
from fitnus.commands.queued import CommandQueue, Queued, send_to_each
from fitnus.errors import Conflict, InvalidInput, NotFound
from fitnus.keyed_queue import KeyedQueue, QueuedItem, drain
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.redis_client import RedisClient
from fitnus.waitlist.offers import SWEEP_WAITLIST, WAITLIST_KINDS, Waitlist, keep_offered
from fitnus.waitlist.rules import DEFAULT_WINDOWS, ClaimWindows
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import debit_locked, lock_wallets, post_entry

QUEUE_KIND = "meetup"
JOIN_MEETUP = "join_meetup"
LEAVE_MEETUP = "leave_meetup"
MEETUP_FULL = "meetup_full"
ALREADY_JOINED = "already_joined"
MEETUP_CLOSED = "meetup_closed"
NOT_A_MEMBER = "not_a_member"
NOT_JOINED = "not_joined"
# The seat rule's refusals, in a meetup's words.
MEETUP_CODES = {rules.SOLD_OUT: MEETUP_FULL, rules.ALREADY_RESERVED: ALREADY_JOINED,
                rules.TIMESLOT_CLOSED: MEETUP_CLOSED}
MEETUP_REFUSALS = {
    MEETUP_FULL: "every place is taken",
    ALREADY_JOINED: "you have joined this meetup already",
    MEETUP_CLOSED: "this meetup has started",
    NOT_A_MEMBER: "only the club's members join its meetups",
    NOT_JOINED: "you have not joined this meetup",
}
BATCH_SIZE = 500
LEASE_TTL_MS = 3_000
MAX_ADVANCE = timedelta(days=365)


class MeetupRefused(Conflict):
    """A join or leave refused for one of the codes above."""


@dataclass(frozen=True, kw_only=True)
class MeetupDraft:
    title: str
    starts_at: datetime
    duration_minutes: int
    place: str
    capacity: int
    fee_coupons: int = 0
    latitude: float | None = None
    longitude: float | None = None


def meetup_queue(redis: RedisClient, keys: Keys) -> KeyedQueue:
    return KeyedQueue(redis=redis, prefix=keys.prefix, kind=QUEUE_KIND)


async def create_meetup(*, principal: Principal, club_id: int, draft: MeetupDraft,
                        clock: Clock) -> Meetup:
    club = await led_club(principal, club_id)
    now = clock.now()
    if not now < draft.starts_at <= now + MAX_ADVANCE:
        raise InvalidInput("a meetup starts in the coming year", code="meetup_in_past")
    values = {field.name: getattr(draft, field.name) for field in fields(draft)}
    values.pop("duration_minutes")
    return await Meetup.create(
        club_id=club.id, ends_at=draft.starts_at + timedelta(minutes=draft.duration_minutes),
        joined=0, created_at=now, **values)


async def meetups_of(*, principal: Principal, club_id: int, starts_from: datetime,
                     starts_before: datetime) -> list[Meetup]:
    club = await require_member(principal, club_id)
    return await Meetup.filter(club_id=club.id, starts_at__gte=as_utc(starts_from),
                               starts_at__lt=as_utc(starts_before)).order_by("starts_at", "id")


async def meetup_of_member(principal: Principal, meetup_id: int) -> Meetup:
    meetup = await Meetup.get_or_none(id=meetup_id)
    if meetup is None:
        raise NotFound("no such meetup", code="meetup_not_found")
    await club_by_id(meetup.club_id)  # type: ignore[attr-defined]
    if not await ClubMember.exists(club_id=meetup.club_id,  # type: ignore[attr-defined]
                                   user_id=principal.user_id):
        raise MeetupRefused(MEETUP_REFUSALS[NOT_A_MEMBER], code=NOT_A_MEMBER)
    return meetup


async def request_join(commands: CommandQueue, *, principal: Principal, meetup_id: int,
                       idempotency_key: str | None, sold_out: SoldOutMemory) -> Queued:
    """Into the meetup's queue; the batch decides it with everyone else's. A
    meetup the worker found full is refused at once, as a full timeslot is."""
    async def flagged_full() -> bool:
        return bool(await commands.redis.exists(commands.queue.flag(meetup_id, "full")))

    async def accept() -> Queued:
        if await sold_out.is_full(meetup_id, flagged_full):
            raise MeetupRefused(MEETUP_REFUSALS[MEETUP_FULL], code=MEETUP_FULL)
        meetup = await meetup_of_member(principal, meetup_id)
        if meetup.starts_at <= commands.clock.now():
            raise MeetupRefused(MEETUP_REFUSALS[MEETUP_CLOSED], code=MEETUP_CLOSED)
        return await commands.send(meetup.id, kind=JOIN_MEETUP, user_id=principal.user_id)

    return await commands.first_answer(principal, idempotency_key, accept)


async def request_leave(commands: CommandQueue, *, principal: Principal,
                        meetup_id: int, sold_out: SoldOutMemory) -> Queued:
    meetup = await Meetup.get_or_none(id=meetup_id)
    if meetup is None or not await MeetupAttendee.exists(
            meetup_id=meetup_id, user_id=principal.user_id, active=True):
        raise NotFound("you have not joined this meetup", code="attendee_not_found")
    # Other processes hear of the freed place from the worker; this one may be
    # asked again by the same person the moment the answer reaches them.
    sold_out.forget(meetup_id)
    return await commands.send(meetup.id, kind=LEAVE_MEETUP, user_id=principal.user_id)


async def places_freed(meetup_ids: Sequence[int], *, commands: CommandQueue,
                       sold_out: SoldOutMemory) -> None:
    """Places were freed outside the meetups' queues (a member left the club):
    each queue looks again in line with its requests, offering the place to
    whoever waits or lifting the full flag, which every web process hears."""
    for meetup_id in meetup_ids:
        sold_out.forget(meetup_id)
    await send_to_each(commands.queue, meetup_ids, kind=SWEEP_WAITLIST,
                       schedule_drain=commands.schedule_drain,
                       accepted_at=commands.clock.now().timestamp())


# --- Deciding, in the worker ----------------------------------------------------------


async def drain_meetup(
    meetup_id: int, *, redis: RedisClient, keys: Keys, clock: Clock,
    published: Callable[[Decisions], Awaitable[None]], windows: ClaimWindows = DEFAULT_WINDOWS,
) -> int:
    queue = meetup_queue(redis, keys)

    async def decide(items: Sequence[QueuedItem], token: int) -> DecidedBatch:
        return await decide_meetup_batch(meetup_id, items, token=token, clock=clock,
                                         windows=windows)

    async def announce(batch: DecidedBatch, token: int) -> None:
        await flag_fullness(redis, queue, meetup_id, full=batch.full, token=token,
                            reopened_channel=keys.meetup_reopened)
        await published(batch.decided)

    give_up = giving_up(published, clock, fenced_by=Meetup, key=meetup_id)
    return await drain(queue, meetup_id, decide=decide, announce=announce, give_up=give_up,
                       batch_size=BATCH_SIZE, lease_ttl_ms=LEASE_TTL_MS)


async def decide_meetup_batch(
    meetup_id: int, items: Sequence[QueuedItem], *, token: int, clock: Clock,
    windows: ClaimWindows = DEFAULT_WINDOWS,
) -> DecidedBatch:
    """One transaction, in queue order: the meetup's row, then its people's
    wallets by user id, as a timeslot's batch takes them. A place freed by a
    run goes to the waitlist before the next run."""
    now = clock.now()
    async with in_transaction():
        meetup = await Meetup.select_for_update().get(id=meetup_id)
        await meetup.fetch_related("club")
        await advance_fence(Meetup, meetup, token)
        decided, fresh = await split_decided(items)
        waitlist = await Waitlist.of(MeetupPlaces(meetup), windows)
        await lock_wallets({item.payload["user_id"] for item in fresh
                            if "user_id" in item.payload} | waitlist.people_to_lock(), now=now)
        # A place freed outside this queue (a member removed) goes to the line first.
        decided.add(await waitlist.offer_free_places(now))
        for kind, run in groupby(fresh, key=lambda item: item.payload.get("kind")):
            if kind in WAITLIST_KINDS:
                decided.add(await waitlist.decide(kind, list(run), now=now))
            elif kind == LEAVE_MEETUP:
                decided.add(await _leaves(meetup, list(run), now=now))
            else:
                decided.add(await _joins(meetup, list(run), now=now))
            decided.add(await waitlist.offer_free_places(now))
        decided.add(await waitlist.positions_told(now=now))
        return DecidedBatch(decided, meetup.joined + meetup.offered >= meetup.capacity)


async def _joins(meetup: Meetup, items: list[QueuedItem], *, now: datetime) -> Decisions:
    requests = [rules.SeatRequest(item.position, item.payload["command_id"],
                                  item.payload["user_id"]) for item in items]
    users = {request.user_id for request in requests}
    members = {member.user_id for member in await ClubMember.filter(  # type: ignore[attr-defined]
        club_id=meetup.club_id, user_id__in=list(users)  # type: ignore[attr-defined]
    )} if meetup.club.dissolved_at is None else set()
    wallets = await lock_wallets(users, now=now)
    decisions = rules.decide_seats(
        [request for request in requests if request.user_id in members],
        seats_left=meetup.capacity - meetup.joined - meetup.offered, price=meetup.fee_coupons,
        available={user: wallet.balance - wallet.held for user, wallet in wallets.items()},
        holders={place.user_id for place in await MeetupAttendee.filter(  # type: ignore[attr-defined]
            meetup_id=meetup.id, user_id__in=list(users), active=True)},
        conflicting=await busy_people(users, starts_at=meetup.starts_at,
                                      ends_at=meetup.ends_at, except_meetup=meetup.id),
        is_open=meetup.starts_at > now,
    )
    outcome = {decision.request.command_id: MEETUP_CODES.get(decision.outcome, decision.outcome)
               for decision in decisions}
    joined = [request for request in requests if outcome.get(request.command_id)
              == rules.CONFIRMED]
    if joined and meetup.fee_coupons > 0:
        await debit_locked([(wallets[request.user_id], place_paid_for(request.command_id))
                            for request in joined],
                           amount=meetup.fee_coupons, kind=LedgerKind.BOOKING_DEBIT, now=now)
    if joined:
        await _take_places(meetup, len(joined))
        await MeetupAttendee.bulk_create([
            new_place(meetup, request.user_id, request.command_id, now=now)
            for request in joined])
    commands: list[Command] = []
    notifications: list[Notification] = []
    for request in requests:
        code = outcome.get(request.command_id, NOT_A_MEMBER)
        payload = {"meetup_id": meetup.id, "command_id": request.command_id}
        if code == rules.CONFIRMED:
            commands.append(succeeded(request.command_id, request.user_id, JOIN_MEETUP,
                                      {"meetup_id": meetup.id}, now))
            notifications.append(event(request.user_id, "meetup.joined", payload,
                                       dedupe=request.command_id, now=now))
        else:
            commands.append(_failed(request.command_id, request.user_id, JOIN_MEETUP, code,
                                    now))
            notifications.append(event(request.user_id, "meetup.rejected",
                                       {**payload, "code": code},
                                       dedupe=request.command_id, now=now))
    return await record(commands, notifications)


def new_place(meetup: Meetup, user_id: int, command_id: str, *,
              now: datetime) -> MeetupAttendee:
    """A member's place, under the club's refund policy of now (the batch
    fetched the meetup's club)."""
    return MeetupAttendee(
        meetup_id=meetup.id, user_id=user_id, active=True, fee_coupons=meetup.fee_coupons,
        starts_at=meetup.starts_at, ends_at=meetup.ends_at, command_id=command_id,
        joined_at=now, **rules.policy_snapshot(meetup.club.cancellation_policy))


async def _take_places(meetup: Meetup, count: int) -> None:
    """The database has the last word on capacity (less the places kept for
    waitlist offers), whatever the rule decided."""
    taken = await Meetup.filter(
        id=meetup.id, joined__lte=F("capacity") - (F("offered") + count)
    ).update(joined=F("joined") + count)
    if taken != 1:
        raise RuntimeError(f"meetup {meetup.id}: {count} places break its capacity")
    meetup.joined += count


def _failed(command_id: str, user_id: int, kind: str, code: str, now: datetime) -> Command:
    return failed(command_id, user_id, kind, code, now,
                  detail=MEETUP_REFUSALS.get(code))


async def _leaves(meetup: Meetup, items: list[QueuedItem], *, now: datetime) -> Decisions:
    """A member leaves; the fee comes back under the club's policy when they
    joined (no free late leave: that is the centers' monthly allowance)."""
    commands: list[Command] = []
    left = 0
    for item in items:
        command_id, user_id = item.payload["command_id"], item.payload["user_id"]
        place = await MeetupAttendee.get_or_none(meetup_id=meetup.id, user_id=user_id,
                                                 active=True)
        refund = None if place is None else place.refund_on_leaving(
            rules.accepted_at(item.payload, default=now))
        if place is None or refund is None:
            code = NOT_JOINED if place is None else rules.ALREADY_STARTED
            commands.append(_failed(command_id, user_id, LEAVE_MEETUP, code, now))
            continue
        await MeetupAttendee.filter(id=place.id, active=True).update(active=None, left_at=now)
        if refund.coupons:
            await post_entry(user_id=user_id, kind=LedgerKind.BOOKING_REFUND,
                             amount=refund.coupons, reference=f"meetup-left:{place.id}", now=now,
                             paid_for=place_paid_for(place.command_id))
        left += 1
        commands.append(succeeded(command_id, user_id, LEAVE_MEETUP,
                                  {"meetup_id": meetup.id, "refunded_coupons": refund.coupons,
                                   "refund_reason": refund.reason}, now))
    if left:
        await Meetup.filter(id=meetup.id, joined__gte=left).update(joined=F("joined") - left)
        meetup.joined -= left
    return await record(commands, [])


@dataclass
class MeetupPlaces:
    """A meetup as its waitlist sees it (fitnus.waitlist.offers.WaitedFor),
    inside the meetup's batch, which holds its row."""

    meetup: Meetup
    column = "meetup_id"
    seated_event = "meetup.joined"
    center_id = None

    @property
    def full_refund_hours(self) -> int:
        return self.meetup.club.cancellation_policy.full_refund_hours

    @property
    def id(self) -> int:
        meetup_id: int = self.meetup.id
        return meetup_id

    @property
    def price(self) -> int:
        return self.meetup.fee_coupons

    @property
    def starts_at(self) -> datetime:
        return self.meetup.starts_at

    @property
    def ends_at(self) -> datetime:
        return self.meetup.ends_at

    @property
    def offered(self) -> int:
        return self.meetup.offered

    def free(self) -> int:
        return self.meetup.capacity - self.meetup.joined - self.meetup.offered

    def is_open(self, now: datetime) -> bool:
        return self.meetup.starts_at > now

    async def admits(self, user_id: int) -> bool:
        return await ClubMember.exists(club_id=self.meetup.club_id,  # type: ignore[attr-defined]
                                       user_id=user_id)

    async def change_offered(self, change: int) -> None:
        await keep_offered(Meetup, self.meetup, change, taken="joined")

    async def seat(self, user_id: int, *, command_id: str, now: datetime,
                   from_offer: bool) -> int:
        if from_offer:
            await self.change_offered(-1)
        await _take_places(self.meetup, 1)
        place = new_place(self.meetup, user_id, command_id, now=now)
        await place.save()
        place_id: int = place.id
        return place_id

    def seat_result(self, seat_id: int) -> dict[str, Any]:
        return {"meetup_id": self.meetup.id, "attendee_id": seat_id}

    def paid_for(self, command_id: str) -> str:
        return place_paid_for(command_id)
