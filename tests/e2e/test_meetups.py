"""Club meetups: members join and leave through the meetup's keyed queue, a
fee is paid once, and meetups and reservations never overlap for one person."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from tortoise.expressions import F

from fitnus.booking import rules
from fitnus.booking.reminders import send_due_reminders
from fitnus.clock import ManualClock, system_clock
from fitnus.clubs import meetups
from fitnus.clubs.models import ClubMember, Meetup, MeetupAttendee, MemberRole
from fitnus.config import Settings
from fitnus.keyed_queue import QueuedItem
from fitnus.notifications.models import Notification
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, fund, open_session, reserve, users_with_tokens
from tests.e2e.test_booking_races import decided, ledgers_agree
from tests.e2e.test_clubs import joined, new_club, unique_name

Client = TestClient[Any, Any]
FEE = 7


def at(hours: float) -> str:
    return (system_clock.now() + timedelta(hours=hours)).replace(
        second=0, microsecond=0).isoformat()


async def club_with_meetup(client: Client, sign_up: Any, *, capacity: int = 5,
                           fee: int = FEE, hours: float = 72) -> tuple[Any, Any, dict[str, Any]]:
    leader, member = await sign_up(), await sign_up()
    club = await new_club(client, leader, name=unique_name("Meetup club"))
    await joined(client, leader, member, club["id"])
    response = await client.post(f"/api/v1/clubs/{club['id']}/meetups", json={
        "title": "토요 러닝", "starts_at": at(hours), "duration_minutes": 90,
        "place": "여의나루역 2번 출구", "capacity": capacity, "fee_coupons": fee,
    }, headers=leader.headers)
    assert response.status == 201, await response.text()
    return leader, member, await response.json()


async def member_at_meetup(client: Client, sign_up: Any, *, capacity: int = 5,
                           hours: float = 72) -> tuple[Any, Any, dict[str, Any]]:
    """A club's meetup, its member holding a place there, the fee paid."""
    leader, member, meetup = await club_with_meetup(client, sign_up, capacity=capacity,
                                                    hours=hours)
    await fund(member.id, FEE)
    response = await join(client, member, meetup["id"], Prefer="wait=8")
    assert response.status == 201, await response.text()
    return leader, member, meetup


async def join(client: Client, person: Any, meetup_id: int, **headers: str) -> Any:
    return await client.post(f"/api/v1/meetups/{meetup_id}/attendees",
                             headers={**person.headers, **headers})


async def refused(response: Any, code: str) -> None:
    assert response.status == 409, await response.text()
    assert (await response.json())["code"] == code


async def test_a_member_joins_pays_once_and_sees_it_on_the_calendar(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    _, member, meetup = await club_with_meetup(client, sign_up)
    await fund(member.id, FEE)
    response = await join(client, member, meetup["id"], Prefer="wait=8")
    assert response.status == 201, await response.text()
    assert (await Wallet.get(user_id=member.id)).balance == 0
    assert (await Meetup.get(id=meetup["id"])).joined == 1
    await refused(await join(client, member, meetup["id"], Prefer="wait=8"), "already_joined")
    calendar = await (await client.get(
        f"/api/v1/me/calendar?from={at(1)}&to={at(100)}".replace("+", "%2B"),
        headers=member.headers)).json()
    assert [(item["kind"], item["id"]) for item in calendar["items"]] == [
        ("club_event", meetup["id"])]


async def test_only_members_join_and_a_full_or_started_meetup_refuses(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    leader, member, meetup = await club_with_meetup(client, sign_up, capacity=1, fee=0)
    stranger = await sign_up()
    await refused(await join(client, stranger, meetup["id"]), "not_a_member")
    assert (await join(client, member, meetup["id"], Prefer="wait=8")).status == 201
    late = await sign_up()
    club_id = meetup["club_id"]
    await joined(client, leader, late, club_id)
    await refused(await join(client, late, meetup["id"], Prefer="wait=8"), "meetup_full")
    started = await client.post(f"/api/v1/clubs/{club_id}/meetups", json={
        "title": "x", "starts_at": at(10), "duration_minutes": 60, "place": "p",
        "capacity": 5}, headers=leader.headers)
    started_id = (await started.json())["id"]
    await Meetup.filter(id=started_id).update(
        starts_at=system_clock.now() - timedelta(minutes=1))
    await refused(await join(client, late, started_id), "meetup_closed")
    assert (await client.get(f"/api/v1/clubs/{club_id}/meetups",
                             headers=stranger.headers)).status == 403
    listed = await (await client.get(f"/api/v1/clubs/{club_id}/meetups?from={at(-1)}"
                                     .replace("+", "%2B"), headers=member.headers)).json()
    assert [item["id"] for item in listed["items"]] == [started_id, meetup["id"]]


@pytest.mark.parametrize("leaving", ["the meetup", "the club"])
async def test_a_full_meetup_refuses_at_once_until_a_place_frees(
    client: Client, sign_up: Any, worker: dramatiq.Worker, leaving: str,
) -> None:
    leader, member, meetup = await club_with_meetup(client, sign_up, capacity=1, fee=0)
    assert (await join(client, member, meetup["id"], Prefer="wait=8")).status == 201
    late = await sign_up()
    await joined(client, leader, late, meetup["club_id"])

    async def refused_at_once() -> bool:
        response = await join(client, late, meetup["id"])
        return response.status == 409

    await eventually(refused_at_once)  # full, and remembered so
    # The member leaves the meetup, or the leader removes them from the club
    # (which frees the place outside the meetup's queue).
    freed = await client.delete(
        f"/api/v1/meetups/{meetup['id']}/attendees/me", headers=member.headers,
    ) if leaving == "the meetup" else await client.delete(
        f"/api/v1/clubs/{meetup['club_id']}/members/{member.id}", headers=leader.headers)
    assert freed.status == 204

    async def taken() -> bool:
        return (await join(client, late, meetup["id"], Prefer="wait=8")).status == 201

    await eventually(taken, deadline_seconds=3)  # within the memory's 5 s


async def test_a_member_who_cannot_pay_the_fee_is_refused(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    _, member, meetup = await club_with_meetup(client, sign_up)
    await refused(await join(client, member, meetup["id"], Prefer="wait=8"),
                  "insufficient_coupons")
    assert not await MeetupAttendee.exists(user_id=member.id)


async def test_meetups_and_reservations_never_overlap_for_one_person(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    _, member, meetup = await club_with_meetup(client, sign_up, fee=0, hours=72)
    await fund(member.id, PRICE * 2)
    same_time = await open_session(client, sign_up, capacity=5, starts_at=at(72.5))
    assert (await reserve(client, member, same_time.timeslot_id, Prefer="wait=8")).status == 201
    await refused(await join(client, member, meetup["id"], Prefer="wait=8"),
                  "schedule_conflict")
    _, other, second = await club_with_meetup(client, sign_up, fee=0, hours=96)
    await fund(other.id, PRICE)
    assert (await join(client, other, second["id"], Prefer="wait=8")).status == 201
    clash = await open_session(client, sign_up, capacity=5, starts_at=at(96.5))
    await refused(await reserve(client, other, clash.timeslot_id, Prefer="wait=8"),
                  "schedule_conflict")


async def test_leaving_a_day_ahead_refunds_the_fee(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    _, member, meetup = await member_at_meetup(client, sign_up)
    left = await client.delete(f"/api/v1/meetups/{meetup['id']}/attendees/me",
                               headers=member.headers)
    assert left.status == 204, await left.text()
    assert (await Wallet.get(user_id=member.id)).balance == FEE
    assert (await Meetup.get(id=meetup["id"])).joined == 0
    again = await client.delete(f"/api/v1/meetups/{meetup['id']}/attendees/me",
                                headers=member.headers)
    assert again.status == 404
    # The place is free again: joining again pays again.
    assert (await join(client, member, meetup["id"], Prefer="wait=8")).status == 201
    assert (await Wallet.get(user_id=member.id)).balance == 0


@pytest.mark.parametrize(("removed_by_leader", "refunded"), [(True, FEE), (False, 0)])
async def test_a_member_who_leaves_the_club_leaves_its_future_meetups(
    client: Client, sign_up: Any, worker: dramatiq.Worker, removed_by_leader: bool,
    refunded: int,
) -> None:
    leader, member, meetup = await member_at_meetup(client, sign_up, hours=5)
    removed = await client.delete(f"/api/v1/clubs/{meetup['club_id']}/members/{member.id}",
                                  headers=(leader if removed_by_leader else member).headers)
    assert removed.status == 204
    # Five hours ahead, under the club's 24 h policy. Removed by the leader:
    # the whole fee, the member did not choose to go. Leaving: what leaving
    # the meetup itself gives back, nothing.
    assert (await Wallet.get(user_id=member.id)).balance == refunded
    assert (await Meetup.get(id=meetup["id"])).joined == 0
    assert not await MeetupAttendee.exists(user_id=member.id, active=True)


def queued_join(user_id: int) -> QueuedItem:
    return QueuedItem(1, {"kind": meetups.JOIN_MEETUP, "command_id": str(uuid.uuid4()),
                          "user_id": user_id, "accepted_at": system_clock.now().timestamp()})


async def test_a_club_with_people_in_a_meetup_ahead_is_not_dissolved(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    leader, member, meetup = await member_at_meetup(client, sign_up, hours=5)
    dissolve = f"/api/v1/clubs/{meetup['club_id']}"
    await refused(await client.delete(dissolve, headers=leader.headers), "meetups_ahead")
    assert await MeetupAttendee.exists(user_id=member.id, active=True)
    assert (await client.get(dissolve, headers=member.headers)).status == 200
    # Once nobody holds a place ahead, it goes; a join queued before is refused.
    assert (await client.delete(f"/api/v1/meetups/{meetup['id']}/attendees/me",
                                headers=member.headers)).status == 204
    assert (await client.delete(dissolve, headers=leader.headers)).status == 204
    await fund(member.id, FEE)
    await meetups.decide_meetup_batch(meetup["id"], [queued_join(member.id)], token=10**9,
                                      clock=system_clock)
    assert not await MeetupAttendee.exists(user_id=member.id, active=True)


async def test_a_joined_meetup_is_reminded_an_hour_before_once(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    _, member, meetup = await club_with_meetup(client, sign_up, fee=0, hours=5)
    assert (await join(client, member, meetup["id"], Prefer="wait=8")).status == 201
    starts = (await Meetup.get(id=meetup["id"])).starts_at
    for minutes_before in (61, 59, 58):
        await send_due_reminders(lead=timedelta(hours=1), zone=ZoneInfo("Asia/Seoul"),
                                 clock=ManualClock(starts - timedelta(minutes=minutes_before)))
    [reminder] = await Notification.filter(user_id=member.id, type="meetup.reminder")
    assert reminder.payload["meetup_id"] == meetup["id"]
    assert reminder.payload["starts_at"].endswith("+09:00")


async def test_meetups_that_cannot_be_are_400_and_only_the_leader_publishes(
    client: Client, sign_up: Any,
) -> None:
    leader, member, meetup = await club_with_meetup(client, sign_up)
    path = f"/api/v1/clubs/{meetup['club_id']}/meetups"
    good = {"title": "x", "starts_at": at(50), "duration_minutes": 60, "place": "p",
            "capacity": 3}
    assert (await client.post(path, json=good, headers=member.headers)).status == 403
    for bad in ({**good, "starts_at": at(-2)}, {**good, "capacity": 0},
                {**good, "fee_coupons": -1}, {**good, "duration_minutes": 5}):
        response = await client.post(path, json=bad, headers=leader.headers)
        assert response.status == 400, (bad, await response.text())


# --- The flash crowd, for a meetup ----------------------------------------------------

PLACES, MEMBERS, REQUESTS = 30, 500, 2000


@dataclass
class JoinStorm:
    seated: set[str]
    first_come: set[str]
    joined: int
    people: int
    debits: int
    unbalanced: list[int]


async def join_storm(client: Client, sign_up: Any, settings: Settings) -> JoinStorm:
    """2,000 join requests from 500 members, all at once, for 30 places."""
    leader = await sign_up()
    club = await new_club(client, leader, name=unique_name("Crowded"))
    members = await users_with_tokens(settings, MEMBERS, coupons=FEE * 2)
    now = system_clock.now()
    await ClubMember.bulk_create([ClubMember(club_id=club["id"], user_id=user_id,
                                             role=MemberRole.MEMBER, joined_at=now)
                                  for user_id, _ in members])
    created = await client.post(f"/api/v1/clubs/{club['id']}/meetups", json={
        "title": "한정 세션", "starts_at": at(100), "duration_minutes": 60, "place": "p",
        "capacity": PLACES, "fee_coupons": FEE}, headers=leader.headers)
    meetup_id = (await created.json())["id"]

    async def ask(person: tuple[int, dict[str, str]]) -> tuple[int, dict[str, Any]]:
        response = await client.post(f"/api/v1/meetups/{meetup_id}/attendees",
                                     headers=person[1])
        body = await response.json()
        # 409: after the worker found the meetup full, refused at once.
        assert response.status == 202 or body["code"] == "meetup_full", body
        return person[0], body

    answers = await asyncio.gather(*(ask(members[n % MEMBERS]) for n in range(REQUESTS)))
    accepted = [(user_id, body) for user_id, body in answers if "command_id" in body]
    await decided([body["command_id"] for _, body in accepted])
    first_come: list[str] = []
    seen: set[int] = set()
    for user_id, body in sorted(accepted, key=lambda pair: pair[1]["position"]):
        if len(first_come) < PLACES and user_id not in seen:
            first_come.append(body["command_id"])
            seen.add(user_id)
    places = await MeetupAttendee.filter(meetup_id=meetup_id, active=True)
    user_ids = [user_id for user_id, _ in members]
    return JoinStorm(
        seated={str(place.command_id) for place in places}, first_come=set(first_come),
        joined=(await Meetup.get(id=meetup_id)).joined,
        people=len({place.user_id for place in places}),  # type: ignore[attr-defined]
        debits=await LedgerEntry.filter(user_id__in=user_ids,
                                        kind=LedgerKind.BOOKING_DEBIT).count(),
        unbalanced=await ledgers_agree(user_ids),
    )


async def test_two_thousand_join_requests_for_thirty_places_first_come_first_served(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker,
) -> None:
    storm = await join_storm(client, sign_up, settings)
    assert (storm.joined, storm.people, storm.debits) == (PLACES, PLACES, PLACES)
    assert storm.seated == storm.first_come
    assert storm.unbalanced == []


@pytest.mark.control
async def test_control_joins_without_the_capacity_guards_pass_it(
    client: Client, sign_up: Any, settings: Settings, worker: dramatiq.Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guards: the seat rule counts the places left, and the UPDATE that
    takes them stops at capacity. Off: both."""
    counting = rules.decide_seats

    def places_never_run_out(requests: list[rules.SeatRequest], **facts: Any) -> Any:
        return counting(requests, **{**facts, "seats_left": REQUESTS})

    async def take_whatever(meetup: Meetup, count: int) -> None:
        await Meetup.filter(id=meetup.id).update(joined=F("joined") + count)

    monkeypatch.setattr(rules, "decide_seats", places_never_run_out)
    monkeypatch.setattr(meetups, "_take_places", take_whatever)
    storm = await join_storm(client, sign_up, settings)
    assert storm.joined > PLACES


async def test_a_meetup_fee_comes_back_under_the_clubs_policy_when_paid(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    leader, member, meetup = await club_with_meetup(client, sign_up, hours=30)
    path = f"/api/v1/clubs/{meetup['club_id']}/cancellation-policy"
    assert await (await client.get(path)).json() == {
        "full_refund_hours": 24, "partial_refund_hours": None, "partial_refund_percent": None}
    half = {"full_refund_hours": 48, "partial_refund_hours": 12, "partial_refund_percent": 50}
    assert (await client.put(path, json=half, headers=member.headers)).status == 403
    assert (await client.put(path, json={"full_refund_hours": 12, "partial_refund_hours": 12,
                                         "partial_refund_percent": 50},
                             headers=leader.headers)).status == 400
    assert (await client.put(path, json=half, headers=leader.headers)).status == 200
    await fund(member.id, FEE)
    assert (await join(client, member, meetup["id"], Prefer="wait=8")).status == 201
    # A change after the fee was paid does not apply to it.
    assert (await client.put(path, json={"full_refund_hours": 1},
                             headers=leader.headers)).status == 200
    left = await client.delete(f"/api/v1/meetups/{meetup['id']}/attendees/me",
                               headers=member.headers)
    assert left.status == 204, await left.text()
    assert (await Wallet.get(user_id=member.id)).balance == FEE * 50 // 100
