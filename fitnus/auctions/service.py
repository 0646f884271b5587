"""Live coupon auctions. Bids, cancellations and closes go through the
auction's keyed queue and are decided in batches, like bookings: one
transaction per batch holds the auction's row (and its fence) and the
bidders' wallets, decides in queue order by the rules (fitnus.auctions.rules)
with each bid judged at the moment the web tier accepted it, and moves the
escrow once: the previous leader's hold released and the new leader's taken.
At the close the winner's hold is captured; no other hold remains."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.auctions import rules
from fitnus.auctions.models import Auction, AuctionEvent, Bid
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
from fitnus.clock import Clock, as_utc
from fitnus.commands.models import Command
from fitnus.commands.queued import CommandQueue, Queued, ScheduleDrain, send_to_each
from fitnus.errors import Conflict, Forbidden, InvalidInput, NotFound
from fitnus.events.models import EventOutbox
from fitnus.events.outbox import AUCTION_BIDS, AUCTION_RESULTS, domain_event
from fitnus.keyed_queue import KeyedQueue, QueuedItem, drain
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.notifications.reads import rows_after_each
from fitnus.redis_client import RedisClient
from fitnus.remembered import Remembered
from fitnus.wallet.lots import live_part
from fitnus.wallet.models import LedgerKind
from fitnus.wallet.service import capture_hold, hold_coupons, lock_wallets, release_hold

QUEUE_KIND = "auction"
PLACE_BID = "place_bid"
CANCEL_AUCTION = "cancel_auction"
# Not a person's command: the end has come (the close job, or a read after it).
CLOSE_AUCTION = "close_auction"
NOT_CANCELLABLE = "auction_not_cancellable"
REFUSALS = {
    rules.AUCTION_NOT_OPEN: "this auction is not taking bids",
    rules.BID_TOO_LOW: "a bid must reach the current price plus the increment",
    rules.INSUFFICIENT_COUPONS: "not enough available coupons for this bid",
    rules.ALREADY_LEADING: "you lead this auction already",
    NOT_CANCELLABLE: "bids have been made: only an admin can cancel it now",
}
# What watchers of the auction's stream are told.
BID_PLACED = "auction.bid"
EXTENDED = "auction.extended"
CLOSED = "auction.closed"
OUTBID = "auction.outbid"
WON = "auction.won"
CANCELLED = "auction.cancelled"
BATCH_SIZE = 500
LEASE_TTL_MS = 3_000
MAX_ADVANCE = timedelta(days=365)
UTC_ZONE = ZoneInfo("UTC")
# A read after the end asks for the close at most this often per auction.
CLOSE_REQUEST_EVERY_MS = 5_000
# A close is queued this long after the end, behind every bid accepted
# before it (a bid is stamped, then queued, within milliseconds).
CLOSE_GRACE = timedelta(seconds=1)


class AuctionStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class BidRefused(Conflict):
    """A bid or cancellation refused for one of the codes in REFUSALS."""


@dataclass(frozen=True, kw_only=True)
class AuctionDraft:
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    starting_price: int
    soft_close_seconds: int = 120
    max_extensions: int | None = None


def status_of(auction: Auction, now: datetime) -> AuctionStatus:
    """By the clock, whether or not the close has been settled yet."""
    if auction.cancelled_at is not None:
        return AuctionStatus.CANCELLED
    if now < auction.starts_at:
        return AuctionStatus.SCHEDULED
    if now < auction.ends_at:
        return AuctionStatus.OPEN
    return AuctionStatus.CLOSED


def terms_of(auction: Auction) -> rules.Terms:
    return rules.Terms(starts_at=auction.starts_at, starting_price=auction.starting_price,
                       soft_close=timedelta(seconds=auction.soft_close_seconds),
                       max_extensions=auction.max_extensions)


def standing_of(auction: Auction) -> rules.Standing:
    return rules.Standing(ends_at=auction.ends_at, price=auction.price,
                          leader=auction.leader_id,  # type: ignore[attr-defined]
                          leader_max=auction.leader_max, extensions=auction.extensions)


def alias(bidder_no: int) -> str:
    """How watchers see a bidder: the order of their first bid here."""
    return f"입찰자 {bidder_no}"


def held_for(auction_id: int) -> str:
    """What the leader's escrow is drawn for (fitnus.wallet.lots)."""
    return f"auction:{auction_id}"


def auction_queue(redis: RedisClient, keys: Keys) -> KeyedQueue:
    return KeyedQueue(redis=redis, prefix=keys.prefix, kind=QUEUE_KIND)


async def create_auction(*, principal: Principal, draft: AuctionDraft, clock: Clock) -> Auction:
    if principal.role not in (Role.ADMIN, Role.OWNER):
        raise Forbidden("admins and center owners run auctions", code="owner_role_required")
    now = clock.now()
    if not now < draft.ends_at <= now + MAX_ADVANCE:
        raise InvalidInput("an auction ends in the coming year", code="auction_in_past")
    if draft.starts_at >= draft.ends_at:
        raise InvalidInput("an auction starts before it ends", code="ends_before_start")
    values = {field.name: getattr(draft, field.name) for field in fields(draft)}
    return await Auction.create(created_by_id=principal.user_id, created_at=now, **values)


async def auction_by_id(auction_id: int) -> Auction:
    auction = await Auction.get_or_none(id=auction_id)
    if auction is None:
        raise NotFound("no such auction", code="auction_not_found")
    return auction


async def auctions_by_status(status: AuctionStatus | None, *, now: datetime,
                             limit: int = 100) -> list[Auction]:
    query = Auction.all()
    at = as_utc(now)
    if status is AuctionStatus.CANCELLED:
        query = query.filter(cancelled_at__isnull=False)
    elif status is not None:
        query = query.filter(cancelled_at__isnull=True)
        query = {AuctionStatus.SCHEDULED: query.filter(starts_at__gt=at),
                 AuctionStatus.OPEN: query.filter(starts_at__lte=at, ends_at__gt=at),
                 AuctionStatus.CLOSED: query.filter(ends_at__lte=at)}[status]
    return await query.order_by("ends_at", "id").limit(limit)


async def bidder_numbers(auction_id: int, user_ids: Sequence[int]) -> dict[int, int]:
    return dict(await Bid.filter(auction_id=auction_id, user_id__in=list(user_ids)).distinct()
                .values_list("user_id", "bidder_no"))


EVENT_PAGE = 100


async def leader_numbers(auctions: Sequence[Auction]) -> dict[int, int]:
    """Per auction with a leader, the leader's bidder number: one query for all."""
    leaders = {auction.id: auction.leader_id for auction in auctions  # type: ignore[attr-defined]
               if auction.leader_id is not None}  # type: ignore[attr-defined]
    if not leaders:
        return {}
    rows = await Bid.filter(auction_id__in=list(leaders), user_id__in=set(leaders.values())
                            ).distinct().values_list("auction_id", "user_id", "bidder_no")
    return {auction_id: number for auction_id, user_id, number in rows
            if leaders[auction_id] == user_id}


async def events_after_each(cursors: dict[int, int], limit: int) -> list[AuctionEvent]:
    """Events of several auctions, each after its own cursor, in id order."""
    return await rows_after_each(AuctionEvent, "auction_id", cursors, limit)


def event_owner(row: AuctionEvent) -> int:
    auction_id: int = row.auction_id  # type: ignore[attr-defined]
    return auction_id


async def bids_of(auction_id: int, *, limit: int = 100) -> list[Bid]:
    return await Bid.filter(auction_id=auction_id).order_by("-id").limit(limit)


@dataclass(frozen=True)
class Window:
    """What a web process remembers of an auction for a moment (prices only
    go up and an end only moves later): enough to refuse at once a bid that
    cannot count, and to queue the rest without reading MySQL."""

    starts_at: datetime
    # Past this no bid can count, whatever is still in line.
    open_until: datetime
    min_next_bid: int
    settled: bool


REMEMBER_WINDOW_SECONDS = 1.0
MAX_WINDOWS = 10_000


def auction_windows() -> Remembered[Window]:
    async def read(auction_id: int) -> Window | None:
        auction = await Auction.get_or_none(id=auction_id)
        if auction is None:
            return None
        return Window(starts_at=auction.starts_at,
                      open_until=auction.ends_at + timedelta(seconds=auction.soft_close_seconds),
                      min_next_bid=rules.min_next_bid(standing_of(auction), terms_of(auction)),
                      settled=auction.cancelled_at is not None or auction.closed_at is not None)

    return Remembered(read, remember_seconds=REMEMBER_WINDOW_SECONDS, max_keys=MAX_WINDOWS)


async def request_bid(commands: CommandQueue, windows: Remembered[Window], *,
                      principal: Principal, auction_id: int, amount: int | None,
                      max_amount: int | None, idempotency_key: str | None) -> Queued:
    """Into the auction's queue, stamped with the moment it was accepted. A
    bid that cannot count by what this process saw a moment ago (the
    auction is not open, or the bid is under a price already reached) is
    refused at once."""
    async def accept() -> Queued:
        window = await windows.get(auction_id)
        if window is None:
            raise NotFound("no such auction", code="auction_not_found")
        now = commands.clock.now()
        if window.settled or not window.starts_at <= now < window.open_until:
            raise BidRefused(REFUSALS[rules.AUCTION_NOT_OPEN], code=rules.AUCTION_NOT_OPEN)
        if (max_amount or amount or 0) < window.min_next_bid:
            raise BidRefused(REFUSALS[rules.BID_TOO_LOW], code=rules.BID_TOO_LOW)
        return await commands.send(auction_id, kind=PLACE_BID, user_id=principal.user_id,
                                   amount=amount, max_amount=max_amount)

    return await commands.first_answer(principal, idempotency_key, accept)


async def request_cancel(commands: CommandQueue, *, principal: Principal,
                         auction_id: int) -> Queued:
    auction = await auction_by_id(auction_id)
    if principal.role is not Role.ADMIN and (
            auction.created_by_id != principal.user_id):  # type: ignore[attr-defined]
        # Auctions are public: seen by all, so another's is forbidden, not unknown.
        raise Forbidden("only its creator or an admin cancels an auction",
                        code="not_auction_creator")
    return await commands.send(auction.id, kind=CANCEL_AUCTION, user_id=principal.user_id,
                               admin=principal.role is Role.ADMIN)


async def request_close_if_due(commands: CommandQueue, auction: Auction) -> None:
    """A read after the end settles the result if the close job has not."""
    if (auction.closed_at is not None or auction.cancelled_at is not None
            or commands.clock.now() < auction.ends_at + CLOSE_GRACE):
        return
    if await commands.redis.set(commands.queue.flag(auction.id, "closing"), "1", nx=True,
                                px=CLOSE_REQUEST_EVERY_MS):
        await send_to_each(commands.queue, [auction.id], kind=CLOSE_AUCTION,
                           schedule_drain=commands.schedule_drain,
                           accepted_at=commands.clock.now().timestamp())


async def request_due_closes(queue: KeyedQueue, *, schedule_drain: ScheduleDrain,
                             clock: Clock) -> int:
    """The close job: every auction past its end and not yet settled."""
    now = clock.now()
    due = cast(list[int], await Auction.filter(
        closed_at__isnull=True, cancelled_at__isnull=True, ends_at__lte=as_utc(now - CLOSE_GRACE),
    ).values_list("id", flat=True))
    await send_to_each(queue, due, kind=CLOSE_AUCTION, schedule_drain=schedule_drain,
                       accepted_at=now.timestamp())
    return len(due)


# --- Deciding, in the worker ----------------------------------------------------------


async def drain_auction(auction_id: int, *, redis: RedisClient, keys: Keys, clock: Clock,
                        zone: ZoneInfo, published: Callable[[Decisions], Awaitable[None]]) -> int:
    async def decide(items: Sequence[QueuedItem], token: int) -> DecidedBatch:
        return await decide_auction_batch(auction_id, items, token=token, clock=clock,
                                          zone=zone)

    async def announce(batch: DecidedBatch, token: int) -> None:
        # Every process's watchers of the auction read its new events once.
        await redis.publish(keys.auction_watchers(str(auction_id)), "1")
        await published(batch.decided)

    give_up = giving_up(published, clock, fenced_by=Auction, key=auction_id)
    return await drain(auction_queue(redis, keys), auction_id, decide=decide,
                       announce=announce, give_up=give_up, batch_size=BATCH_SIZE,
                       lease_ttl_ms=LEASE_TTL_MS)


@dataclass
class _Batch:
    """A batch's auction as it is decided, before anything is written."""

    auction: Auction
    standing: rules.Standing
    can_pay: dict[int, int]
    numbers: dict[int, int]
    now: datetime
    zone: ZoneInfo
    bids: list[Bid]
    commands: list[Command]
    notifications: list[Notification]
    # For the watchers: public, by alias.
    events: list[AuctionEvent]
    # For Kafka, after commit (fitnus.events.outbox).
    domain_events: list[EventOutbox] = field(default_factory=list)
    closed: bool = False
    cancelled: bool = False


async def decide_auction_batch(auction_id: int, items: Sequence[QueuedItem], *, token: int,
                               clock: Clock, zone: ZoneInfo = UTC_ZONE) -> DecidedBatch:
    now = clock.now()
    async with in_transaction():
        auction = await Auction.select_for_update().get(id=auction_id)
        await advance_fence(Auction, auction, token)
        decided, fresh = await split_decided(items)
        before = standing_of(auction)
        people = {item.payload["user_id"] for item in fresh if item.payload.get("kind")
                  == PLACE_BID} | ({before.leader} if before.leader else set())
        wallets = await lock_wallets(people, now=now)
        can_pay = {user: wallet.balance - wallet.held for user, wallet in wallets.items()}
        if before.leader is not None:
            # Released, the leader's hold returns to its lots: a part whose lot
            # expired meanwhile goes with it.
            can_pay[before.leader] += await live_part(held_for(auction.id), now=now)
        batch = _Batch(auction, before, can_pay, await bidder_numbers(auction.id, list(people)),
                       now, zone, [], [], [], [])
        for item in fresh:
            kind = item.payload.get("kind")
            if kind == PLACE_BID:
                _bid(batch, item)
            elif kind == CANCEL_AUCTION:
                _cancel(batch, item)
            elif kind == CLOSE_AUCTION:
                _close(batch, item)
        await _write(batch, before)
        await _number_bids(batch)
        decided.add(await record(batch.commands, batch.notifications))
        return DecidedBatch(decided, full=False)


def _settled(batch: _Batch) -> bool:
    return (batch.closed or batch.cancelled or batch.auction.closed_at is not None
            or batch.auction.cancelled_at is not None)


def _bid(batch: _Batch, item: QueuedItem) -> None:
    payload, now = item.payload, batch.now
    command_id, user_id = payload["command_id"], payload["user_id"]
    request = rules.BidRequest(
        user_id=user_id, accepted_at=datetime.fromtimestamp(payload["accepted_at"], now.tzinfo),
        amount=payload.get("amount"), max_amount=payload.get("max_amount"))
    outcome = (rules.Decided(rules.AUCTION_NOT_OPEN, batch.standing) if _settled(batch) else
               rules.decide_bid(batch.standing, terms_of(batch.auction), request,
                                lambda user: batch.can_pay.get(user, 0)))
    if outcome.outcome != rules.PLACED:
        batch.commands.append(failed(command_id, user_id, PLACE_BID, outcome.outcome, now,
                                     detail=REFUSALS[outcome.outcome]))
        return
    displaced, ended = batch.standing.leader, batch.standing.ends_at
    batch.standing = outcome.standing
    if user_id not in batch.numbers:
        batch.numbers[user_id] = batch.auction.bidder_count + 1
        batch.auction.bidder_count += 1
    price = outcome.standing.price
    assert price is not None
    batch.bids.append(Bid(auction_id=batch.auction.id, user_id=user_id,
                          bidder_no=batch.numbers[user_id], amount=outcome.amount,
                          max_amount=request.max_amount, price_after=price,
                          leading=outcome.leading, command_id=command_id, placed_at=now))
    batch.domain_events.append(domain_event(AUCTION_BIDS, str(batch.auction.id), BID_PLACED, {
        "auction_id": batch.auction.id, "command_id": command_id, "user_id": user_id,
        "amount": outcome.amount, "price": price, "leading": outcome.leading,
        "leader_id": outcome.standing.leader, "ends_at": outcome.standing.ends_at.isoformat(),
        "accepted_at": request.accepted_at.isoformat()}, now=now))
    batch.commands.append(succeeded(command_id, user_id, PLACE_BID, {
        "auction_id": batch.auction.id, "amount": outcome.amount, "leading": outcome.leading,
        "price": price}, now))
    leader = outcome.standing.leader
    assert leader is not None
    batch.events.append(_watched(batch, BID_PLACED, price=price,
                                 leader_alias=alias(batch.numbers[leader])))
    if outcome.standing.ends_at != ended:
        batch.events.append(_watched(batch, EXTENDED))
    if displaced is not None and displaced != outcome.standing.leader:
        batch.notifications.append(event(displaced, OUTBID, {
            "auction_id": batch.auction.id, "price": price}, dedupe=command_id, now=now))


def _watched(batch: _Batch, type: str, **payload: Any) -> AuctionEvent:
    ends_at = batch.standing.ends_at.astimezone(batch.zone).isoformat()
    return AuctionEvent(auction_id=batch.auction.id, type=type, created_at=batch.now,
                        payload={"auction_id": batch.auction.id, "ends_at": ends_at, **payload})


def _cancel(batch: _Batch, item: QueuedItem) -> None:
    command_id, user_id, now = item.payload["command_id"], item.payload["user_id"], batch.now
    if _settled(batch) or (not item.payload.get("admin")
                           and (batch.auction.bid_count or batch.bids)):
        batch.commands.append(failed(command_id, user_id, CANCEL_AUCTION, NOT_CANCELLABLE, now,
                                     detail=REFUSALS[NOT_CANCELLABLE]))
        return
    batch.cancelled = True
    batch.events.append(_watched(batch, CANCELLED))
    batch.commands.append(succeeded(command_id, user_id, CANCEL_AUCTION,
                                    {"auction_id": batch.auction.id}, now))


def _close(batch: _Batch, item: QueuedItem) -> None:
    due = datetime.fromtimestamp(item.payload["accepted_at"], batch.now.tzinfo)
    if not _settled(batch) and batch.standing.ends_at + CLOSE_GRACE <= due:
        batch.closed = True
        leader = batch.standing.leader
        batch.events.append(_watched(
            batch, CLOSED, final_price=batch.standing.price if leader else None,
            winner_alias=None if leader is None else alias(batch.numbers[leader])))


async def _write(batch: _Batch, before: rules.Standing) -> None:
    """The escrow moved once for the whole batch, then the auction's row."""
    auction, after, now = batch.auction, batch.standing, batch.now
    escrow = held_for(auction.id)
    if (after.leader, after.price) != (before.leader, before.price) or batch.cancelled:
        if before.leader is not None and before.price:
            await release_hold(user_id=before.leader, amount=before.price, held_for=escrow,
                               now=now)
        if (after.leader is not None and after.price and not batch.cancelled
                and not await hold_coupons(user_id=after.leader, amount=after.price,
                                           held_for=escrow, now=now)):
            raise RuntimeError(f"auction {auction.id}: the leader cannot pay what the "
                               "rules let them bid")
    changes: dict[str, Any] = {
        "price": after.price, "leader_id": after.leader, "leader_max": after.leader_max,
        "ends_at": after.ends_at, "extensions": after.extensions,
        "bid_count": auction.bid_count + len(batch.bids), "bidder_count": auction.bidder_count}
    if batch.cancelled:
        # Nobody leads a cancelled auction: its holds went back above.
        changes.update(cancelled_at=now, leader_id=None, leader_max=None)
        bidders = set(cast(list[int], await Bid.filter(auction_id=auction.id).values_list(
            "user_id", flat=True)))
        bidders |= {bid.user_id for bid in batch.bids}  # type: ignore[attr-defined]
        batch.notifications += [event(user, CANCELLED, {"auction_id": auction.id},
                                      dedupe=str(auction.id), now=now) for user in bidders]
    if batch.closed:
        changes["closed_at"] = now
        if after.leader is not None and after.price:
            await capture_hold(user_id=after.leader, amount=after.price,
                               kind=LedgerKind.AUCTION_CAPTURE, reference=escrow,
                               held_for=escrow, paid_for=escrow, now=now)
            batch.notifications.append(event(after.leader, WON, {
                "auction_id": auction.id, "final_price": after.price},
                dedupe=str(auction.id), now=now))
    await Auction.filter(id=auction.id).update(**changes)
    if batch.bids:
        await Bid.bulk_create(batch.bids)
    if batch.events:
        await AuctionEvent.bulk_create(batch.events)
    if batch.cancelled or batch.closed:
        batch.domain_events.append(domain_event(AUCTION_RESULTS, str(auction.id),
                                                CANCELLED if batch.cancelled else CLOSED, {
            "auction_id": auction.id, "winner_id": None if batch.cancelled else after.leader,
            "final_price": None if batch.cancelled or after.leader is None else after.price,
        }, now=now))
    if batch.domain_events:
        await EventOutbox.bulk_create(batch.domain_events)


async def _number_bids(batch: _Batch) -> None:
    """The bids' ids, for the commands' answers: bulk_create returns none on MySQL."""
    if not batch.bids:
        return
    ids = dict(await Bid.filter(command_id__in=[bid.command_id for bid in batch.bids])
               .values_list("command_id", "id"))
    for command in batch.commands:
        if command.kind == PLACE_BID and command.result is not None:
            command.result["bid_id"] = ids.get(command.id)
