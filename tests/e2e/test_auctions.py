"""Auctions through HTTP and real workers: bids decided in the auction's keyed
queue with the escrow in the wallets, the soft close, the close and a
cancellation; a storm of bids equal to a sequential replay of the rule."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from tortoise.expressions import F
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.auctions import rules, service
from fitnus.auctions.models import Auction
from fitnus.clock import ManualClock
from fitnus.events.models import EventOutbox
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet
from fitnus.wallet.service import post_entry
from tests.conftest import eventually
from tests.e2e.test_booking import fund
from tests.e2e.test_booking_races import decided, ledgers_agree
from tests.e2e.test_centers import admin_headers
from tests.e2e.test_events import read_events
from web.keys import AUCTION_COMMANDS, AUCTION_WINDOWS

Client = TestClient[Any, Any]
BIDDERS = 40
BIDS = 400
WAVE = 100


def moment(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def new_auction(client: Client, owner: Any, **fields: Any) -> dict[str, Any]:
    body = {"title": "PT 한 달권", "description": "트레이너 1:1", "starts_at": moment(seconds=-1),
            "ends_at": moment(hours=1), "starting_price": 10, **fields}
    response = await client.post("/api/v1/auctions", json=body, headers=owner.headers)
    assert response.status == 201, await response.text()
    auction: dict[str, Any] = await response.json()
    return auction


async def bid(client: Client, person: Any, auction_id: int, wait: bool = True,
              **body: Any) -> Any:
    return await client.post(f"/api/v1/auctions/{auction_id}/bids", json=body,
                             headers={**person.headers, **({"Prefer": "wait=8"} if wait else {})})


async def placed(client: Client, person: Any, auction_id: int, **body: Any) -> dict[str, Any]:
    response = await bid(client, person, auction_id, **body)
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def refused(response: Any, code: str) -> None:
    assert response.status == 409, await response.text()
    assert (await response.json())["code"] == code


async def bidder(sign_up: Any, coupons: int) -> Any:
    person = await sign_up()
    await fund(person.id, coupons)
    return person


async def held(person: Any) -> tuple[int, int]:
    wallet = await Wallet.get(user_id=person.id)
    return wallet.balance, wallet.held


async def test_bids_move_the_escrow_to_the_leader(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    owner = await sign_up("owner")
    first, second = await bidder(sign_up, 100), await bidder(sign_up, 100)
    auction = await new_auction(client, owner)
    assert (auction["status"], auction["min_next_bid"], auction["current_price"]) == (
        "open", 10, None)
    await refused(await bid(client, first, auction["id"], amount=9), "bid_too_low")
    answer = await placed(client, first, auction["id"], amount=10)
    assert (answer["leading"], answer["price"]) == (True, 10)
    assert await held(first) == (100, 10)
    await refused(await bid(client, first, auction["id"], amount=20), "already_leading")
    await refused(await bid(client, second, auction["id"], amount=101), "insufficient_coupons")
    await placed(client, second, auction["id"], amount=11)
    assert (await held(first), await held(second)) == ((100, 0), (100, 11))
    assert await Notification.exists(user_id=first.id, type=service.OUTBID)
    shown = await (await client.get(f"/api/v1/auctions/{auction['id']}")).json()
    assert (shown["current_price"], shown["min_next_bid"], shown["leader_alias"],
            shown["bid_count"]) == (11, 12, "입찰자 2", 2)
    open_now = await (await client.get("/api/v1/auctions", params={"status": "open"})).json()
    assert [(item["current_price"], item["leader_alias"]) for item in open_now["items"]
            if item["id"] == auction["id"]] == [(11, "입찰자 2")]
    listed = await (await client.get(f"/api/v1/auctions/{auction['id']}/bids")).json()
    assert [(item["amount"], item["bidder_alias"]) for item in listed["items"]] == [
        (11, "입찰자 2"), (10, "입찰자 1")]
    # Held coupons cannot be spent elsewhere.
    assert (await (await client.get("/api/v1/me/wallet", headers=second.headers)).json())[
        "available"] == 89


async def test_a_bidder_learns_their_alias_and_whether_they_lead(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    """A page tells which leader on the public stream is you by your alias."""
    owner = await sign_up("owner")
    first, second = await bidder(sign_up, 100), await bidder(sign_up, 100)
    auction = await new_auction(client, owner)
    path = f"/api/v1/auctions/{auction['id']}/me"

    async def standing(person: Any) -> tuple[str | None, bool]:
        response = await client.get(path, headers=person.headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        return body["bidder_alias"], body["leading"]

    assert await standing(first) == (None, False)
    await placed(client, first, auction["id"], amount=10)
    assert await standing(first) == ("입찰자 1", True)
    await placed(client, second, auction["id"], amount=11)
    assert (await standing(first), await standing(second)) == (
        ("입찰자 1", False), ("입찰자 2", True))
    assert (await client.get(path)).status == 401
    assert (await client.get("/api/v1/auctions/999999999/me",
                             headers=first.headers)).status == 404


async def test_a_bid_under_a_price_already_reached_is_refused_at_the_door(
    client: Client, aiohttp_client: Any, make_app: Any, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    """Prices only go up: a web process that saw the price refuses a bid
    under it without queueing it (a 409 without Prefer, not a 202)."""
    owner = await sign_up("owner")
    first, second = await bidder(sign_up, 100), await bidder(sign_up, 100)
    auction = await new_auction(client, owner)
    await placed(client, first, auction["id"], amount=20)
    other_process = await aiohttp_client(make_app())
    await refused(await bid(other_process, second, auction["id"], wait=False, amount=20),
                  "bid_too_low")
    queued = await bid(other_process, second, auction["id"], wait=False, amount=21)
    assert queued.status == 202


async def test_a_proxy_bids_the_least_that_leads_and_holds_only_that(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    owner = await sign_up("owner")
    patient, eager = await bidder(sign_up, 100), await bidder(sign_up, 100)
    auction = await new_auction(client, owner)
    assert (await placed(client, patient, auction["id"], max_amount=60))["price"] == 10
    assert await held(patient) == (100, 10)
    answer = await placed(client, eager, auction["id"], amount=30)
    assert (answer["leading"], answer["price"]) == (False, 31)
    assert (await held(patient), await held(eager)) == ((100, 31), (100, 0))


async def test_a_leaders_hold_from_a_lot_that_expired_defends_only_with_what_is_left(
    aiohttp_client: Any, make_app: Any, sign_up: Any, redis: Redis, settings: Any,
) -> None:
    """Held coupons keep their lot: released after it expired, they are gone,
    so the leader's proxy cannot count on them (it wedged the queue)."""
    start = datetime.now(UTC)
    clock = ManualClock(start)
    app = (await aiohttp_client(make_app(clock=clock))).app
    leader, challenger = await sign_up(), await sign_up()
    async with in_transaction():
        for person, coupons, days in ((leader, 10, 1), (leader, 5, 365), (challenger, 100, 365)):
            await post_entry(user_id=person.id, kind=LedgerKind.GRANT, amount=coupons,
                             reference=f"lots:{person.id}:{days}", now=start,
                             expires_at=start + timedelta(days=days))
    owner = await sign_up("owner")
    auction = await service.create_auction(
        principal=Principal(owner.id, Role.OWNER), clock=clock, draft=service.AuctionDraft(
            title="PT", description="", starts_at=start - timedelta(minutes=1),
            ends_at=start + timedelta(days=30),
            starting_price=10, soft_close_seconds=0))

    async def drained_below(auction_id: int) -> None:
        return None

    # Drained below, on this test's clock: not by the session's worker, on its own.
    commands = replace(app[AUCTION_COMMANDS], schedule_drain=drained_below)

    async def decide(person: Any, **body: Any) -> None:
        await service.request_bid(commands, app[AUCTION_WINDOWS],
                                  principal=Principal(person.id, Role.USER),
                                  auction_id=auction.id, idempotency_key=None,
                                  **{"amount": None, "max_amount": None, **body})

        async def quiet(decided: Any) -> None:
            return None

        await service.drain_auction(auction.id, redis=redis, keys=Keys(settings.redis_key_prefix),
                                    clock=clock, zone=service.UTC_ZONE, published=quiet)

    await decide(leader, max_amount=20)
    assert await held(leader) == (15, 10)
    clock.advance(timedelta(days=2))
    await decide(challenger, amount=12)
    standing = await Auction.get(id=auction.id)
    assert (standing.leader_id, standing.price) == (  # type: ignore[attr-defined]
        challenger.id, 12)
    # The 10 held came back to an expired lot and went with it.
    assert (await held(leader), await held(challenger)) == ((5, 0), (100, 12))
    assert await ledgers_agree([leader.id, challenger.id]) == []


async def test_the_close_captures_the_winners_hold_and_nothing_else(
    client: Client, sign_up: Any, worker: dramatiq.Worker, messages: Any,
) -> None:
    owner = await sign_up("owner")
    loser, winner = await bidder(sign_up, 50), await bidder(sign_up, 50)
    auction = await new_auction(client, owner, ends_at=moment(seconds=3), soft_close_seconds=0)
    empty = await new_auction(client, owner, ends_at=moment(seconds=3))
    await placed(client, loser, auction["id"], amount=10)
    await placed(client, winner, auction["id"], amount=15)
    await asyncio.sleep(3.1)
    await refused(await bid(client, loser, auction["id"], amount=30), "auction_not_open")
    # The status follows the clock before the result is settled.
    shown = await (await client.get(f"/api/v1/auctions/{auction['id']}")).json()
    assert (shown["status"], shown["final_price"]) == ("closed", None)

    async def settled() -> bool:
        return not await Auction.filter(id__in=[auction["id"], empty["id"]],
                                        closed_at__isnull=True).exists()

    # The job asks for every due one, a moment after the end.
    await service.request_due_closes(client.app[AUCTION_COMMANDS].queue,
                                     schedule_drain=messages.schedule_auction_drain,
                                     clock=ManualClock(datetime.now(UTC) + service.CLOSE_GRACE))
    await eventually(settled)
    assert (await held(loser), await held(winner)) == ((50, 0), (35, 0))
    capture = await LedgerEntry.get(user_id=winner.id, kind=LedgerKind.AUCTION_CAPTURE)
    assert (capture.amount, capture.reference) == (-15, f"auction:{auction['id']}")
    assert await Notification.exists(user_id=winner.id, type=service.WON)
    settled = await (await client.get(f"/api/v1/auctions/{auction['id']}")).json()
    assert (settled["final_price"], settled["winner_alias"]) == (15, "입찰자 2")
    no_bids = await (await client.get(f"/api/v1/auctions/{empty['id']}")).json()
    assert (no_bids["status"], no_bids["final_price"]) == ("closed", None)
    assert await ledgers_agree([loser.id, winner.id]) == []


async def test_a_bid_in_the_last_window_moves_the_end(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    owner = await sign_up("owner")
    person = await bidder(sign_up, 50)
    auction = await new_auction(client, owner, ends_at=moment(seconds=30),
                                soft_close_seconds=60, max_extensions=1)
    await placed(client, person, auction["id"], amount=10)
    shown = await (await client.get(f"/api/v1/auctions/{auction['id']}")).json()
    moved = datetime.fromisoformat(shown["ends_at"]) - datetime.fromisoformat(auction["ends_at"])
    assert shown["extensions"] == 1
    assert timedelta(seconds=25) < moved < timedelta(seconds=35)


async def test_watchers_see_each_bid_and_the_close_and_miss_nothing_on_reconnect(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    owner = await sign_up("owner")
    first, second = await bidder(sign_up, 50), await bidder(sign_up, 50)
    auction = await new_auction(client, owner, ends_at=moment(seconds=4), soft_close_seconds=0)
    path = f"/api/v1/auctions/{auction['id']}/stream"
    watcher = await client.get(path)  # anyone: no login
    assert watcher.headers["Content-Type"] == "text/event-stream"
    await placed(client, first, auction["id"], amount=10)
    seen = await read_events(watcher, 1)
    assert (seen[0]["event"], seen[0]["data"]["price"], seen[0]["data"]["leader_alias"]) == (
        "auction.bid", 10, "입찰자 1")
    watcher.close()
    await placed(client, second, auction["id"], amount=11)
    late = await client.get(path, headers={"Last-Event-ID": seen[0]["id"]})
    missed = await read_events(late, 1)
    assert (missed[0]["event"], missed[0]["data"]["price"]) == ("auction.bid", 11)
    await asyncio.sleep(5.2)
    await client.get(f"/api/v1/auctions/{auction['id']}")  # a read after the end closes it
    closed = await read_events(late, 1)
    assert (closed[0]["event"], closed[0]["data"]["winner_alias"],
            closed[0]["data"]["final_price"]) == ("auction.closed", "입찰자 2", 11)
    late.close()
    for bad in ({"params": {"last_event_id": "-1"}}, {"params": {"last_event_id": "x"}},
                {"headers": {"Last-Event-ID": "not-an-id"}}):
        assert (await client.get(path, **bad)).status == 400, bad
    assert (await client.get("/api/v1/auctions/999999999/stream")).status == 404
    replay = await client.get(path, params={"last_event_id": "0"})
    assert [event["event"] for event in await read_events(replay, 3)] == [
        "auction.bid", "auction.bid", "auction.closed"]
    replay.close()


async def test_cancelling_before_and_after_bids(
    client: Client, sign_up: Any, settings: Any, worker: dramatiq.Worker,
) -> None:
    owner, stranger = await sign_up("owner"), await sign_up("owner")
    person = await bidder(sign_up, 50)
    quiet = await new_auction(client, owner)
    assert (await client.delete(f"/api/v1/auctions/{quiet['id']}",
                                headers=stranger.headers)).status == 403
    assert (await client.delete(f"/api/v1/auctions/{quiet['id']}",
                                headers=owner.headers)).status == 204
    await refused(await bid(client, person, quiet["id"], amount=10), "auction_not_open")
    busy = await new_auction(client, owner)
    await placed(client, person, busy["id"], amount=12)
    await refused(await client.delete(f"/api/v1/auctions/{busy['id']}", headers=owner.headers),
                  "auction_not_cancellable")
    admin = await admin_headers(client, settings)
    assert (await client.delete(f"/api/v1/auctions/{busy['id']}", headers=admin)).status == 204
    assert await held(person) == (50, 0)
    assert await Notification.exists(user_id=person.id, type=service.CANCELLED)
    shown = await (await client.get(f"/api/v1/auctions/{busy['id']}")).json()
    assert (shown["status"], shown["leader_alias"]) == ("cancelled", None)
    mine = await (await client.get(f"/api/v1/auctions/{busy['id']}/me",
                                   headers=person.headers)).json()
    assert mine["leading"] is False


async def test_what_is_not_an_auction_or_a_bid_is_refused(
    client: Client, sign_up: Any,
) -> None:
    owner, person = await sign_up("owner"), await sign_up()
    for body in ({"ends_at": moment(hours=-1)},
                 {"starts_at": moment(hours=2), "ends_at": moment(hours=1)},
                 {"starting_price": 0}):
        response = await client.post("/api/v1/auctions", headers=owner.headers, json={
            "title": "x", "starts_at": moment(seconds=1), "ends_at": moment(hours=1),
            "starting_price": 10, **body})
        assert response.status == 400, await response.text()
    forbidden = await client.post("/api/v1/auctions", headers=person.headers, json={
        "title": "x", "starts_at": moment(seconds=1), "ends_at": moment(hours=1),
        "starting_price": 10})
    assert forbidden.status == 403
    auction = await new_auction(client, owner)
    for body in ({}, {"amount": 10, "max_amount": 20}, {"amount": "10"}, {"amount": 0}):
        response = await bid(client, person, auction["id"], **body)
        assert response.status == 400, (body, await response.text())
    assert (await bid(client, person, 2**62, amount=10)).status == 404


@dataclass
class BidStorm:
    price: int | None
    leader: int | None
    replayed: rules.Standing
    held_total: int
    leader_held: int
    overdrawn: list[int]
    unbalanced: list[int]


async def bid_storm(client: Client, sign_up: Any) -> BidStorm:
    """``BIDS`` bids from ``BIDDERS`` people with random budgets, in waves
    of ``WAVE`` sent at once."""
    owner = await sign_up("owner")
    chance = random.Random(7)
    budgets: dict[int, int] = {}
    people = []
    for _ in range(BIDDERS):
        person = await bidder(sign_up, chance.randint(20, 500))
        budgets[person.id] = (await Wallet.get(user_id=person.id)).balance
        people.append(person)
    auction = await new_auction(client, owner, soft_close_seconds=0)
    # Each wave bids higher than the last, so the lead and the price move
    # from batch to batch.
    requests = [(chance.choice(people), chance.choice(("amount", "max_amount")),
                 chance.randint(10, 120) + 100 * (n // WAVE)) for n in range(BIDS)]
    queued: list[tuple[tuple[Any, str, int], dict[str, Any]]] = []
    for wave in range(0, BIDS, WAVE):
        # Waves decided one after another: several batches, so the escrow
        # moves between batches as well as within one.
        answers = await asyncio.gather(*(bid(client, person, auction["id"], wait=False,
                                             **{field: amount})
                                         for person, field, amount in requests[wave:wave + WAVE]))
        for request, answer in zip(requests[wave:wave + WAVE], answers, strict=True):
            body = await answer.json()
            if answer.status == 409:
                # Under a price already reached: refused at the door, never queued.
                assert body["code"] == "bid_too_low"
                continue
            assert answer.status == 202, body
            queued.append((request, body))
        await decided([body["command_id"] for _, body in queued])
    # The queued requests, one at a time in queue order, by the rule alone.
    replayed = rules.Standing(ends_at=datetime.fromisoformat(auction["ends_at"]))
    terms = rules.Terms(starts_at=datetime.fromisoformat(auction["starts_at"]),
                        starting_price=10, soft_close=timedelta(0), max_extensions=None)
    in_queue_order = sorted(queued, key=lambda pair: pair[1]["position"])
    for (person, field, amount), _ in in_queue_order:
        replayed = rules.decide_bid(replayed, terms, rules.BidRequest(
            user_id=person.id, accepted_at=datetime.now(UTC), **{field: amount}),
            budgets.__getitem__).standing
    final = await Auction.get(id=auction["id"])
    ids = list(budgets)
    total = await Wallet.filter(user_id__in=ids).annotate(total=Sum("held")).first().values(
        "total")
    leader_id = final.leader_id  # type: ignore[attr-defined]
    return BidStorm(
        price=final.price, leader=leader_id, replayed=replayed,
        held_total=(total or {}).get("total") or 0,
        leader_held=0 if leader_id is None else (await Wallet.get(user_id=leader_id)).held,
        overdrawn=[wallet.user_id for wallet in await Wallet.filter(user_id__in=ids)  # type: ignore[attr-defined]
                   if wallet.balance - wallet.held < 0],
        unbalanced=await ledgers_agree(ids))


async def test_a_storm_of_bids_ends_as_the_rule_applied_in_order(
    client: Client, sign_up: Any, worker: dramatiq.Worker,
) -> None:
    storm = await bid_storm(client, sign_up)

    async def outbox_drained() -> bool:
        # No Kafka configured in these tests: drained to nowhere, never piling up.
        return not await EventOutbox.exists()

    await eventually(outbox_drained)
    assert (storm.price, storm.leader) == (storm.replayed.price, storm.replayed.leader)
    assert storm.price is not None
    assert storm.held_total == storm.leader_held == storm.price
    assert storm.overdrawn == storm.unbalanced == []


@pytest.mark.control
async def test_control_without_the_release_the_storm_leaves_holds_behind(
    client: Client, sign_up: Any, worker: dramatiq.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The escrow guard: the previous leader's hold is released in the
    transaction that takes the new leader's. Off: holds pile up."""
    async def keep_the_hold(**_: Any) -> None:
        return None

    async def hold_anyway(*, user_id: int, amount: int, **_: Any) -> bool:
        await Wallet.filter(user_id=user_id).update(held=F("held") + amount)
        return True

    monkeypatch.setattr(service, "release_hold", keep_the_hold)
    monkeypatch.setattr(service, "hold_coupons", hold_anyway)
    storm = await bid_storm(client, sign_up)
    assert storm.price is not None
    assert storm.held_total > storm.price
