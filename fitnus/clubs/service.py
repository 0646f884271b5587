"""Clubs (크루): a leader, members who applied and were accepted, and the
rules that keep a club whole: a name unique among living clubs, a member cap
that holds under concurrent acceptances, and never a club without a leader."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.booking.rules import CancellationPolicy
from fitnus.clock import Clock, as_utc
from fitnus.clubs.models import (
    ApplicationStatus,
    Club,
    ClubApplication,
    ClubMember,
    Meetup,
    MeetupAttendee,
    MemberRole,
    place_paid_for,
)
from fitnus.errors import Conflict, Forbidden, InvalidInput, NotFound
from fitnus.notifications.service import notify
from fitnus.waitlist.models import WaitlistEntry
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import lock_wallets, post_entry

EARTH_RADIUS_M = 6_371_008.8
APPLICATION_RECEIVED = "club.application_received"
APPLICATION_ACCEPTED = "club.application_accepted"
APPLICATION_REJECTED = "club.application_rejected"


class ClubNameTaken(Conflict):
    code = "club_name_taken"


class ClubFull(Conflict):
    code = "club_full"


class AlreadyMember(Conflict):
    code = "already_member"


class AlreadyApplied(Conflict):
    code = "already_applied"


class NotAMember(Forbidden):
    code = "not_a_member"


@dataclass(frozen=True, kw_only=True)
class ClubDraft:
    name: str
    description: str
    sports: list[str]
    latitude: float | None = None
    longitude: float | None = None
    max_members: int | None = None


@dataclass(frozen=True)
class Decided:
    """An application decided, and who was told (their stream must be rung)."""

    application: ClubApplication
    notified: int


def name_key(name: str) -> str:
    """Names are the same when they differ only in case and spacing."""
    return " ".join(name.split()).casefold()


async def create_club(*, principal: Principal, draft: ClubDraft, clock: Clock) -> Club:
    now = clock.now()
    try:
        async with in_transaction():
            club = await Club.create(
                name_key=name_key(draft.name), leader_id=principal.user_id, member_count=1,
                created_at=now, updated_at=now,
                **{field.name: getattr(draft, field.name) for field in fields(draft)},
            )
            await ClubMember.create(club_id=club.id, user_id=principal.user_id,
                                    role=MemberRole.LEADER, joined_at=now)
    except IntegrityError as taken:
        raise ClubNameTaken(f"a club called {draft.name!r} exists") from taken
    return club


async def club_by_id(club_id: int, *, locked: bool = False) -> Club:
    """``locked``: the row is held until the transaction ends (a locking read
    sees the latest commit)."""
    clubs = Club.select_for_update() if locked else Club
    club = await clubs.get_or_none(id=club_id, dissolved_at=None)
    if club is None:
        raise NotFound("no such club", code="club_not_found")
    return club


async def led_club(principal: Principal, club_id: int, *, admin_too: bool = False,
                   locked: bool = False) -> Club:
    club = await club_by_id(club_id, locked=locked)
    if club.leader_id != principal.user_id and not (  # type: ignore[attr-defined]
            admin_too and principal.role is Role.ADMIN):
        raise Forbidden("only the club's leader does this", code="not_club_leader")
    return club


async def set_refund_policy(*, principal: Principal, club_id: int, policy: CancellationPolicy,
                            clock: Clock) -> Club:
    """For meetup fees paid from now on; each place keeps the policy it was paid under."""
    policy.check()
    club = await led_club(principal, club_id)
    await Club.filter(id=club.id).update(
        cancel_full_refund_hours=policy.full_refund_hours,
        cancel_partial_refund_hours=policy.partial_refund_hours,
        cancel_partial_refund_percent=policy.partial_refund_percent, updated_at=clock.now())
    return await club_by_id(club.id)


async def require_member(principal: Principal, club_id: int) -> Club:
    club = await club_by_id(club_id)
    if principal.role is not Role.ADMIN and not await ClubMember.exists(
            club_id=club.id, user_id=principal.user_id):
        raise NotAMember("only members see this")
    return club


async def update_club(
    *, principal: Principal, club_id: int, changes: dict[str, object], clock: Clock
) -> Club:
    """Only the changed columns are written, with the row locked: writing back
    the whole row read earlier would undo what commits meanwhile (a member
    admitted, a hand-over, a dissolution)."""
    columns = dict(changes)
    if "name" in columns:
        columns["name_key"] = name_key(str(columns["name"]))
    try:
        async with in_transaction():
            club = await led_club(principal, club_id, locked=True)
            cap = changes.get("max_members")
            if isinstance(cap, int) and cap < club.member_count:
                raise InvalidInput(f"the club has {club.member_count} members already",
                                   code="max_members_below_members")
            await _save_changes(club, columns, now=clock.now())
    except IntegrityError as taken:
        raise ClubNameTaken(f"a club called {changes['name']!r} exists") from taken
    return await club_by_id(club_id)


async def _save_changes(club: Club, columns: dict[str, object], *, now: datetime) -> None:
    await Club.filter(id=club.id).update(**columns, updated_at=now)


async def dissolve_club(*, principal: Principal, club_id: int, clock: Clock) -> None:
    """The leader or an admin ends the club; its name is free again. Refused
    while anyone holds a place at one of its meetups ahead, or waits for one:
    their fees and offers would be left behind (a meetup is not called off
    yet). The meetups' rows are held meanwhile, so no join slips in; a join
    decided after finds no members (fitnus.clubs.meetups)."""
    now = clock.now()
    async with in_transaction():
        club = await led_club(principal, club_id, admin_too=True, locked=True)
        ahead = [meetup.id for meetup in await Meetup.select_for_update().filter(
            club_id=club.id, starts_at__gt=as_utc(now)).order_by("id").only("id")]
        if ahead and (
                await MeetupAttendee.exists(meetup_id__in=ahead, active=True)
                or await WaitlistEntry.exists(meetup_id__in=ahead, active=True)):
            raise Conflict("people hold places at this club's meetups ahead, or wait for one",
                           code="meetups_ahead")
        await Club.filter(id=club.id).update(dissolved_at=now, name_key=None)


@dataclass(frozen=True)
class Near:
    latitude: float
    longitude: float
    radius_m: float


def distance_m(near: Near, latitude: float, longitude: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius."""
    phi1, phi2 = math.radians(near.latitude), math.radians(latitude)
    dphi, dlambda = phi2 - phi1, math.radians(longitude - near.longitude)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


async def search_clubs(
    *, q: str | None, sport: str | None, near: Near | None, after_id: int | None, limit: int
) -> list[Club]:
    """Living clubs by id whose name holds every word of ``q``, that do
    ``sport``, and whose place is within ``near``; ``limit`` + 1 of them."""
    query = Club.filter(dissolved_at=None)
    for word in (q or "").split():
        query = query.filter(name__icontains=word)
    if near is not None:
        # A box around the circle in SQL, the circle itself below.
        dlat = math.degrees(near.radius_m / EARTH_RADIUS_M)
        dlng = dlat / max(math.cos(math.radians(near.latitude)), 1e-6)
        query = query.filter(latitude__gte=near.latitude - dlat,
                             latitude__lte=near.latitude + dlat,
                             longitude__gte=near.longitude - dlng,
                             longitude__lte=near.longitude + dlng)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    found: list[Club] = []
    async for club in query.order_by("id"):
        if sport is not None and sport not in club.sports:
            continue
        if near is not None and distance_m(near, club.latitude or 0.0,
                                           club.longitude or 0.0) > near.radius_m:
            continue
        found.append(club)
        if len(found) > limit:
            break
    return found


async def apply(*, principal: Principal, club_id: int, message: str,
                clock: Clock) -> tuple[ClubApplication, int]:
    """An application for the leader to decide; returns it and the leader to tell."""
    club = await club_by_id(club_id)
    if await ClubMember.exists(club_id=club.id, user_id=principal.user_id):
        raise AlreadyMember("you are a member of this club")
    if club.max_members is not None and club.member_count >= club.max_members:
        raise ClubFull("the club has all the members it takes")
    now = clock.now()
    try:
        async with in_transaction():
            application = await ClubApplication.create(
                club_id=club.id, user_id=principal.user_id, message=message,
                status=ApplicationStatus.PENDING, pending=True, created_at=now)
            leader: int = club.leader_id  # type: ignore[attr-defined]
            await notify(user_id=leader, type=APPLICATION_RECEIVED, clock=clock,
                         payload={"club_id": club.id, "application_id": application.id},
                         dedupe_key=f"{APPLICATION_RECEIVED}:{application.id}")
    except IntegrityError as pending:
        raise AlreadyApplied("your application is waiting for the leader") from pending
    return application, leader


async def applications_of(
    *, principal: Principal, club_id: int, status: ApplicationStatus | None,
    after_id: int | None, limit: int,
) -> list[ClubApplication]:
    club = await led_club(principal, club_id)
    query = ClubApplication.filter(club_id=club.id).select_related("user")
    if status is not None:
        query = query.filter(status=status)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return await query.order_by("id").limit(limit + 1)


async def _admit(club_id: int) -> bool:
    """One more member if the cap allows, in the UPDATE itself: acceptances at
    the same moment cannot together pass the cap."""
    admitted = await Club.filter(id=club_id, dissolved_at=None).filter(
        Q(max_members__isnull=True) | Q(member_count__lt=F("max_members"))
    ).update(member_count=F("member_count") + 1)
    return admitted == 1


async def decide_application(
    *, principal: Principal, club_id: int, application_id: int, accept: bool, clock: Clock,
) -> Decided:
    """The leader accepts (a member, if the cap allows) or rejects; the
    applicant is told either way. Deciding twice is refused."""
    club = await led_club(principal, club_id)
    now = clock.now()
    status = ApplicationStatus.ACCEPTED if accept else ApplicationStatus.REJECTED
    async with in_transaction():
        application = await ClubApplication.get_or_none(id=application_id, club_id=club.id)
        if application is None:
            raise NotFound("no such application", code="application_not_found")
        # The club's row first: deciding the application checks its foreign
        # key, a shared lock on that row that two acceptances would then both
        # hold and both want to raise, a deadlock.
        if accept and not await _admit(club.id):
            raise ClubFull("the club has all the members it takes")
        decided = await ClubApplication.filter(
            id=application.id, status=ApplicationStatus.PENDING
        ).update(status=status, pending=None, decided_at=now)
        if decided != 1:
            raise Conflict("this application is decided already", code="application_decided")
        applicant: int = application.user_id  # type: ignore[attr-defined]
        if accept:
            await ClubMember.create(club_id=club.id, user_id=applicant,
                                    role=MemberRole.MEMBER, joined_at=now)
        kind = APPLICATION_ACCEPTED if accept else APPLICATION_REJECTED
        await notify(user_id=applicant, type=kind, clock=clock,
                     payload={"club_id": club.id, "application_id": application.id},
                     dedupe_key=f"{kind}:{application.id}")
        await application.refresh_from_db()
    return Decided(application, applicant)


async def memberships_of(*, user_id: int, after_id: int | None,
                         limit: int) -> list[ClubMember]:
    """The person's memberships of living clubs, with their clubs, in the
    order they joined; ``limit`` + 1 of them."""
    query = ClubMember.filter(user_id=user_id, club__dissolved_at=None)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return await query.select_related("club").order_by("id").limit(limit + 1)


async def members_of(*, principal: Principal, club_id: int) -> list[ClubMember]:
    club = await require_member(principal, club_id)
    return await ClubMember.filter(club_id=club.id).select_related("user").order_by("id")


async def remove_member(*, principal: Principal, club_id: int, user_id: int,
                        clock: Clock) -> list[int]:
    """A member leaves, or the leader removes one, and with it their places at
    the club's future meetups: fees refunded in full when the leader removed
    them, under each place's policy when they left (as leaving the meetup
    would). The leader hands over first. Returns the meetups where a place
    was freed: their queues must look again (an offer to whoever waits, or
    the full flag lifted)."""
    club = await club_by_id(club_id)
    leader: int = club.leader_id  # type: ignore[attr-defined]
    if principal.user_id not in (user_id, leader):
        raise Forbidden("only the member or the leader does this", code="not_club_leader")
    if user_id == leader:
        raise Conflict("hand the club over before leaving it", code="leader_must_hand_over")
    async with in_transaction():
        removed = await ClubMember.filter(club_id=club.id, user_id=user_id).delete()
        if removed != 1:
            raise NotFound("no such member", code="member_not_found")
        await Club.filter(id=club.id).update(member_count=F("member_count") - 1)
        return await _leave_future_meetups(club.id, user_id, now=clock.now(),
                                           by_leader=principal.user_id == leader)


async def _leave_future_meetups(club_id: int, user_id: int, *, now: datetime,
                                by_leader: bool) -> list[int]:
    """In the transaction that ends the membership, so nothing is left behind
    if the process dies. The meetups' rows and then the wallet are locked as
    a meetup's batch locks them, so the two wait for each other."""
    places = await MeetupAttendee.filter(
        meetup__club_id=club_id, user_id=user_id, active=True, starts_at__gt=as_utc(now))
    if not places:
        return []
    freed = []
    meetups = await Meetup.select_for_update().filter(
        id__in=[place.meetup_id for place in places]).order_by("id")  # type: ignore[attr-defined]
    await lock_wallets([user_id], now=now)
    for meetup in meetups:
        left = await MeetupAttendee.filter(meetup_id=meetup.id, user_id=user_id,
                                           active=True).update(active=None, left_at=now)
        if not left:
            continue
        await Meetup.filter(id=meetup.id, joined__gte=1).update(joined=F("joined") - 1)
        freed.append(meetup.id)
        place = next(place for place in places
                     if place.meetup_id == meetup.id)  # type: ignore[attr-defined]
        under_policy = place.refund_on_leaving(now)
        refund = place.fee_coupons if by_leader else (
            under_policy.coupons if under_policy is not None else 0)
        if refund:
            await post_entry(user_id=user_id, kind=LedgerKind.BOOKING_REFUND,
                             amount=refund, reference=f"meetup-left:{place.id}",
                             now=now, paid_for=place_paid_for(place.command_id))
    return freed


async def hand_over(*, principal: Principal, club_id: int, user_id: int,
                    clock: Clock) -> Club:
    """The leader makes another member the leader, and stays a member."""
    club = await led_club(principal, club_id)
    if user_id == principal.user_id:
        raise InvalidInput("you lead this club already", code="already_leader")
    async with in_transaction():
        # The member first: only a member can lead, and the club's leader
        # column must never name anyone else.
        promoted = await ClubMember.filter(club_id=club.id, user_id=user_id).update(
            role=MemberRole.LEADER)
        if promoted != 1:
            raise NotFound("no such member", code="member_not_found")
        moved = await Club.filter(id=club.id, leader_id=principal.user_id).update(
            leader_id=user_id, updated_at=clock.now())
        if moved != 1:
            raise Conflict("the club changed hands meanwhile", code="not_club_leader")
        await ClubMember.filter(club_id=club.id, user_id=principal.user_id).update(
            role=MemberRole.MEMBER)
    return await club_by_id(club.id)
