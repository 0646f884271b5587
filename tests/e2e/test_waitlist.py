"""Waitlists: a freed seat is offered to the first in line with their coupons
held, claimed, declined or expired through the session's keyed queue."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from fitnus.booking.batches import decide_batch
from fitnus.booking.models import Reservation
from fitnus.centers.models import Timeslot
from fitnus.clock import ManualClock, system_clock
from fitnus.clubs.models import Meetup, MeetupAttendee
from fitnus.config import Settings
from fitnus.keyed_queue import QueuedItem
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.waitlist.models import WaitlistEntry
from fitnus.waitlist.offers import SWEEP_WAITLIST
from fitnus.waitlist.rules import DEFAULT_WINDOWS
from fitnus.waitlist.service import sweep_waitlists
from fitnus.wallet.models import LedgerEntry, Wallet
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, Session, fund, open_session, reserve
from tests.e2e.test_cancellation_policy import booked, cancel, hours_ahead
from tests.e2e.test_clubs import joined
from tests.e2e.test_meetups import FEE, member_at_meetup

Client = TestClient[Any, Any]
SEOUL = ZoneInfo("Asia/Seoul")


async def wait_in_line(client: Client, person: Any, timeslot_id: int, *,
                       auto_claim: bool = False) -> dict[str, Any]:
    response = await client.post(f"/api/v1/timeslots/{timeslot_id}/waitlist",
                                 json={"auto_claim": auto_claim}, headers=person.headers)
    assert response.status == 201, await response.text()
    entry: dict[str, Any] = await response.json()
    return entry


async def my_entry(client: Client, person: Any, entry_id: int) -> dict[str, Any]:
    items = (await (await client.get("/api/v1/me/waitlist", headers=person.headers)).json())[
        "items"]
    [entry] = [item for item in items if item["id"] == entry_id]
    return entry


async def status_becomes(client: Client, person: Any, entry_id: int, status: str) -> None:
    async def reached() -> bool:
        return (await my_entry(client, person, entry_id))["status"] == status

    await eventually(reached)


async def claim(client: Client, person: Any, entry_id: int) -> Any:
    return await client.post(f"/api/v1/waitlist/{entry_id}/claim",
                             headers={**person.headers, "Prefer": "wait=8"})


async def sweep(redis: Redis, settings: Settings, messages: Any) -> None:
    """What the scheduler's sweep-waitlists job does."""
    await sweep_waitlists(redis=redis, keys=Keys(settings.redis_key_prefix), clock=system_clock,
                          windows=DEFAULT_WINDOWS, schedule_timeslot_drain=messages.schedule_drain,
                          schedule_meetup_drain=messages.schedule_meetup_drain)


async def refused(response: Any, code: str) -> None:
    assert response.status == 409, await response.text()
    assert (await response.json())["code"] == code


async def full_session(client: Client, sign_up: Any, **session: Any
                       ) -> tuple[Session, Any, int]:
    """A one-seat session, taken: its holder and reservation."""
    opened = await open_session(client, sign_up, capacity=1, **session)
    holder, reservation_id = await booked(client, sign_up, opened)
    return opened, holder, reservation_id


async def funded(sign_up: Any, coupons: int = PRICE) -> Any:
    person = await sign_up()
    await fund(person.id, coupons)
    return person


async def test_a_freed_seat_is_offered_to_the_first_in_line_held_and_claimed(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, holder, reservation_id = await full_session(client, sign_up)
    first, second, latecomer = await funded(sign_up), await funded(sign_up), await funded(
        sign_up)
    entry = await wait_in_line(client, first, session.timeslot_id)
    assert (entry["position"], entry["status"], entry["timeslot_id"]) == (
        1, "waiting", session.timeslot_id)
    behind = await wait_in_line(client, second, session.timeslot_id)
    assert behind["position"] == 2
    await cancel(client, holder, reservation_id)

    offered = await my_entry(client, first, entry["id"])
    assert (offered["status"], offered["held_coupons"]) == ("offered", PRICE)
    assert offered["offer_expires_at"].endswith("+09:00")
    wallet = await (await client.get("/api/v1/me/wallet", headers=first.headers)).json()
    assert wallet == {"balance": PRICE, "held": PRICE, "available": 0, "lots": []}
    # The freed seat is the line's, not the next booking's.
    await refused(await reserve(client, latecomer, session.timeslot_id, Prefer="wait=8"),
                  "sold_out")
    assert (await my_entry(client, second, behind["id"]))["position"] == 1
    [moved_up] = await Notification.filter(user_id=second.id, type="waitlist.position_changed")
    assert moved_up.payload["position"] == 1
    assert await Notification.exists(user_id=first.id, type="waitlist.offered")

    claimed = await claim(client, first, entry["id"])
    assert claimed.status == 201, await claimed.text()
    seat = await claimed.json()
    reservation = await Reservation.get(id=seat["reservation_id"])
    assert (reservation.user_id, reservation.active) == (first.id, True)  # type: ignore[attr-defined]
    assert await (await client.get("/api/v1/me/wallet", headers=first.headers)).json() == {
        "balance": 0, "held": 0, "available": 0, "lots": []}
    timeslot = await Timeslot.get(id=session.timeslot_id)
    assert (timeslot.reserved, timeslot.offered) == (1, 0)
    assert (await my_entry(client, first, entry["id"]))["reservation_id"] == reservation.id
    # Claiming again tells the same story and pays nothing more.
    again = await claim(client, first, entry["id"])
    assert (again.status, (await again.json())["reservation_id"]) == (201, reservation.id)
    assert await LedgerEntry.filter(user_id=first.id, amount=-PRICE).count() == 1


async def test_declining_releases_the_hold_and_offers_the_next_in_line(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, holder, reservation_id = await full_session(client, sign_up)
    first, second = await funded(sign_up), await funded(sign_up)
    entry = await wait_in_line(client, first, session.timeslot_id)
    behind = await wait_in_line(client, second, session.timeslot_id)
    await cancel(client, holder, reservation_id)
    await status_becomes(client, first, entry["id"], "offered")
    declined = await client.delete(f"/api/v1/waitlist/{entry['id']}", headers=first.headers)
    assert declined.status == 204, await declined.text()
    assert (await my_entry(client, first, entry["id"]))["status"] == "left"
    assert (await Wallet.get(user_id=first.id)).held == 0
    await status_becomes(client, second, behind["id"], "offered")
    assert (await Wallet.get(user_id=second.id)).held == PRICE
    # Leaving twice is fine; a claim of a left entry is not found.
    assert (await client.delete(f"/api/v1/waitlist/{entry['id']}",
                                headers=first.headers)).status == 204
    assert (await claim(client, first, entry["id"])).status == 404


async def test_an_offer_past_its_window_expires_once_and_the_next_is_offered(
    client: Client, sign_up: Any, worker: dramatiq.Worker, redis: Redis, settings: Settings,
    messages: Any,
) -> None:
    session, holder, reservation_id = await full_session(client, sign_up)
    first, second = await funded(sign_up), await funded(sign_up)
    entry = await wait_in_line(client, first, session.timeslot_id)
    behind = await wait_in_line(client, second, session.timeslot_id)
    await cancel(client, holder, reservation_id)
    await status_becomes(client, first, entry["id"], "offered")
    # The window has passed (as the clock would say two hours later).
    await WaitlistEntry.filter(id=entry["id"]).update(
        offer_expires_at=system_clock.now() - timedelta(seconds=1))
    await sweep(redis, settings, messages)
    await status_becomes(client, second, behind["id"], "offered")
    ended = await my_entry(client, first, entry["id"])
    assert (ended["status"], ended["end_reason"]) == ("expired", "expired")
    assert (await Wallet.get(user_id=first.id)).held == 0
    await refused(await claim(client, first, entry["id"]), "offer_expired")
    await sweep(redis, settings, messages)
    await sweep(redis, settings, messages)
    await status_becomes(client, second, behind["id"], "offered")
    assert await Notification.filter(user_id=first.id, type="waitlist.offer_expired").count() == 1
    timeslot = await Timeslot.get(id=session.timeslot_id)
    assert (timeslot.reserved, timeslot.offered) == (0, 1)


async def test_auto_claim_takes_the_seat_while_a_cancellation_would_be_refunded(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, holder, reservation_id = await full_session(client, sign_up)
    eager = await funded(sign_up)
    entry = await wait_in_line(client, eager, session.timeslot_id, auto_claim=True)
    await cancel(client, holder, reservation_id)
    await status_becomes(client, eager, entry["id"], "claimed")
    seat = await Reservation.get(user_id=eager.id, timeslot_id=session.timeslot_id)
    assert (await my_entry(client, eager, entry["id"]))["reservation_id"] == seat.id
    assert await (await client.get("/api/v1/me/wallet", headers=eager.headers)).json() == {
        "balance": 0, "held": 0, "available": 0, "lots": []}
    assert await Notification.exists(user_id=eager.id, type="reservation.confirmed")


async def test_past_the_late_cancel_cutoff_auto_claim_is_an_offer(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, holder, reservation_id = await full_session(client, sign_up,
                                                         starts_at=hours_ahead(5))
    eager = await funded(sign_up)
    entry = await wait_in_line(client, eager, session.timeslot_id, auto_claim=True)
    await cancel(client, holder, reservation_id)
    await status_becomes(client, eager, entry["id"], "offered")
    offered = await my_entry(client, eager, entry["id"])
    # Under 24 h before the start: a 30-minute window.
    expires = (await WaitlistEntry.get(id=entry["id"])).offer_expires_at
    assert expires is not None
    assert timedelta(minutes=29) < expires - system_clock.now() <= timedelta(minutes=30)
    assert offered["held_coupons"] == PRICE


async def test_someone_who_cannot_pay_is_passed_over(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, holder, reservation_id = await full_session(client, sign_up)
    broke, second = await sign_up(), await funded(sign_up)
    entry = await wait_in_line(client, broke, session.timeslot_id)
    behind = await wait_in_line(client, second, session.timeslot_id)
    await cancel(client, holder, reservation_id)
    await status_becomes(client, second, behind["id"], "offered")
    passed = await my_entry(client, broke, entry["id"])
    assert (passed["status"], passed["end_reason"]) == ("expired", "insufficient_coupons")


async def test_a_line_forms_only_where_nothing_is_free(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    roomy = await open_session(client, sign_up, capacity=2)
    person = await funded(sign_up)
    path = f"/api/v1/timeslots/{roomy.timeslot_id}/waitlist"
    await refused(await client.post(path, json={}, headers=person.headers), "not_sold_out")
    session, holder, _ = await full_session(client, sign_up)
    path = f"/api/v1/timeslots/{session.timeslot_id}/waitlist"
    await refused(await client.post(path, json={}, headers=holder.headers), "already_reserved")
    assert (await client.post(path, json={}, headers=person.headers)).status == 201
    await refused(await client.post(path, json={}, headers=person.headers), "already_waiting")
    assert (await client.post("/api/v1/timeslots/999999999/waitlist", json={},
                              headers=person.headers)).status == 404


async def test_bad_requests_and_other_peoples_entries(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    session, _, _ = await full_session(client, sign_up)
    person, stranger = await funded(sign_up), await funded(sign_up)
    path = f"/api/v1/timeslots/{session.timeslot_id}/waitlist"
    for body in ({"auto_claim": "yes"}, {"auto_claim": 1}, None):
        response = await client.post(path, json=body, headers=person.headers)
        assert response.status == 400, await response.text()
    malformed = await client.post(path, data=b"{auto_claim", headers={
        **person.headers, "Content-Type": "application/json"})
    assert malformed.status == 400
    assert (await client.post(path, json={})).status == 401
    entry = await wait_in_line(client, person, session.timeslot_id)
    await refused(await claim(client, person, entry["id"]), "not_offered")
    assert (await claim(client, stranger, entry["id"])).status == 404
    assert (await client.delete(f"/api/v1/waitlist/{entry['id']}",
                                headers=stranger.headers)).status == 404
    # An id that cannot be is no such path.
    assert (await client.post("/api/v1/waitlist/0/claim", headers=person.headers)).status == 404
    assert all(item["id"] != entry["id"] for item in (await (await client.get(
        "/api/v1/me/waitlist", headers=stranger.headers)).json())["items"])


async def test_a_full_meetups_place_goes_to_its_waitlist(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    leader, member, meetup = await member_at_meetup(client, sign_up, capacity=1)
    path = f"/api/v1/meetups/{meetup['id']}/waitlist"
    await refused(await client.post(path, json={}, headers=(await sign_up()).headers),
                  "not_a_member")
    await refused(await client.post(path, json={}, headers=member.headers), "already_reserved")
    await fund(leader.id, FEE)
    response = await client.post(path, json={}, headers=leader.headers)
    assert response.status == 201, await response.text()
    entry = await response.json()
    assert (entry["meetup_id"], entry["position"]) == (meetup["id"], 1)
    left = await client.delete(f"/api/v1/meetups/{meetup['id']}/attendees/me",
                               headers=member.headers)
    assert left.status == 204
    await status_becomes(client, leader, entry["id"], "offered")
    assert (await Meetup.get(id=meetup["id"])).offered == 1
    claimed = await claim(client, leader, entry["id"])
    assert claimed.status == 201, await claimed.text()
    assert (await claimed.json())["meetup_id"] == meetup["id"]
    assert await MeetupAttendee.exists(meetup_id=meetup["id"], user_id=leader.id, active=True)
    assert (await Wallet.get(user_id=leader.id)).held == 0
    assert (await Wallet.get(user_id=leader.id)).balance == 0
    refreshed = await Meetup.get(id=meetup["id"])
    assert (refreshed.joined, refreshed.offered) == (1, 0)


async def test_someone_who_left_the_club_is_passed_over(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    leader, member, meetup = await member_at_meetup(client, sign_up, capacity=1)
    gone, staying = await funded(sign_up, FEE), await funded(sign_up, FEE)
    for person in (gone, staying):
        await joined(client, leader, person, meetup["club_id"])
    path = f"/api/v1/meetups/{meetup['id']}/waitlist"
    first = await (await client.post(path, json={}, headers=gone.headers)).json()
    second = await (await client.post(path, json={}, headers=staying.headers)).json()
    removed = await client.delete(f"/api/v1/clubs/{meetup['club_id']}/members/{gone.id}",
                                  headers=leader.headers)
    assert removed.status == 204
    assert (await client.delete(f"/api/v1/meetups/{meetup['id']}/attendees/me",
                                headers=member.headers)).status == 204
    await status_becomes(client, staying, second["id"], "offered")
    passed = await my_entry(client, gone, first["id"])
    assert (passed["status"], passed["end_reason"]) == ("expired", "not_admitted")


async def test_when_offers_stop_the_line_ends_but_a_live_offer_runs_its_window(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    """36 minutes before the start an offer gets 10 minutes, past the last
    30 minutes in which no offer is made: a sweep then ends the waiting, not it."""
    session, holder, reservation_id = await full_session(client, sign_up,
                                                         starts_at=hours_ahead(0.6))
    first, second = await funded(sign_up), await funded(sign_up)
    offered = await wait_in_line(client, first, session.timeslot_id)
    waiting = await wait_in_line(client, second, session.timeslot_id)
    await cancel(client, holder, reservation_id)
    await status_becomes(client, first, offered["id"], "offered")
    starts_at = (await Timeslot.get(id=session.timeslot_id)).starts_at
    sweep_item = QueuedItem(1, {"kind": SWEEP_WAITLIST, "command_id": str(uuid.uuid4())})
    await decide_batch(session.timeslot_id, [sweep_item], token=10**9,
                       clock=ManualClock(starts_at - timedelta(minutes=29)), zone=SEOUL)
    assert (await my_entry(client, first, offered["id"]))["status"] == "offered"
    ended = await my_entry(client, second, waiting["id"])
    assert (ended["status"], ended["end_reason"]) == ("expired", "closed")
