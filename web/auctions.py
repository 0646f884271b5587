"""Live coupon auctions: admins and center owners run them; people bid through
the auction's keyed queue, like bookings."""

from __future__ import annotations

import json as json_text
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, model_validator

from fitnus.accounts.tokens import Principal
from fitnus.auctions import rules, service
from fitnus.auctions.models import Auction, AuctionEvent
from web.booking import ReservationHeaders
from web.centers import Text100
from web.clubs import Id
from web.commands import (
    CommandAccepted,
    ReservationAccepted,
    accepted,
    decided_within,
    result_within,
)
from web.events import last_event_id, serve_stream
from web.keys import (
    AUCTION_COMMANDS,
    AUCTION_DOORBELLS,
    AUCTION_EVENTS,
    AUCTION_WINDOWS,
    CLOCK,
    service_zone,
)
from web.routing import Api
from web.schemas import Moment, RequestBody, json

api = Api()

MAX_PRICE = 1_000_000
# A cancellation answers once decided (204) unless its queue is this busy (202).
CANCEL_WAIT_SECONDS = 10.0
Price = Annotated[int, Field(ge=1, le=MAX_PRICE)]


class AuctionBody(RequestBody):
    title: Text100
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    starts_at: Moment
    ends_at: Moment
    starting_price: Price
    soft_close_seconds: int = Field(default=120, ge=0, le=3600)
    max_extensions: int | None = Field(default=None, ge=0, le=1000)


class AuctionOut(BaseModel):
    id: int
    title: str
    description: str
    status: Literal["scheduled", "open", "closed", "cancelled"]
    starting_price: int
    current_price: int | None
    min_next_bid: int
    leader_alias: str | None
    bid_count: int
    starts_at: datetime
    ends_at: datetime
    soft_close_seconds: int
    max_extensions: int | None
    extensions: int
    winner_alias: str | None = Field(description="once the result is settled (within "
                                                 "seconds of the end), if anyone bid")
    final_price: int | None = Field(description="once the result is settled, if anyone bid")


class AuctionList(BaseModel):
    items: list[AuctionOut]


class AuctionQuery(BaseModel):
    status: Literal["scheduled", "open", "closed", "cancelled"] | None = None


class AuctionPath(BaseModel):
    auction_id: Id


class WatchQuery(BaseModel):
    last_event_id: int | None = Field(default=None, ge=0, le=2**63 - 1)


class BidBody(RequestBody):
    amount: Price | None = Field(default=None, description="bid exactly this")
    max_amount: Price | None = Field(
        default=None, description="a proxy bid: the least that leads, up to this; the hold is "
                                  "what is bid, not the maximum")

    @model_validator(mode="after")
    def _one_of(self) -> BidBody:
        if (self.amount is None) == (self.max_amount is None):
            raise ValueError("give amount or max_amount")
        return self


class BidOut(BaseModel):
    bid_id: int
    amount: int
    leading: bool
    price: int


class YourStandingOut(BaseModel):
    bidder_alias: str | None = Field(description="how watchers see you here, once you have bid")
    leading: bool


class PlacedBidOut(BaseModel):
    amount: int
    bidder_alias: str
    leading: bool
    at: datetime


class BidList(BaseModel):
    items: list[PlacedBidOut]


async def auctions_out(auctions: list[Auction], request: web.Request) -> list[AuctionOut]:
    numbers = await service.leader_numbers(auctions)
    return [auction_out(auction, numbers.get(auction.id), request) for auction in auctions]


def auction_out(auction: Auction, leader_no: int | None, request: web.Request) -> AuctionOut:
    zone, now = service_zone(request), request.app[CLOCK].now()
    status = service.status_of(auction, now)
    leader = None if leader_no is None else service.alias(leader_no)
    # The result once settled: bids accepted before the end may still be in line.
    closed = auction.closed_at is not None
    return AuctionOut(
        id=auction.id, title=auction.title, description=auction.description,
        status=status.value, starting_price=auction.starting_price,
        current_price=auction.price,
        min_next_bid=rules.min_next_bid(service.standing_of(auction), service.terms_of(auction)),
        leader_alias=leader, bid_count=auction.bid_count,
        starts_at=auction.starts_at.astimezone(zone), ends_at=auction.ends_at.astimezone(zone),
        soft_close_seconds=auction.soft_close_seconds, max_extensions=auction.max_extensions,
        extensions=auction.extensions, winner_alias=leader if closed else None,
        final_price=auction.price if closed else None)


@api.route("POST", "/api/v1/auctions", tag="auctions",
           summary="Run an auction (admins and center owners)", body=AuctionBody, auth=True,
           responses={201: AuctionOut}, errors=(400, 401, 403))
async def create_auction(request: web.Request, *, body: AuctionBody,
                         principal: Principal) -> web.Response:
    auction = await service.create_auction(
        principal=principal, draft=service.AuctionDraft(**body.model_dump()),
        clock=request.app[CLOCK])
    return json(auction_out(auction, None, request), 201)


@api.route("GET", "/api/v1/auctions", tag="auctions",
           summary="Auctions by end, the next to end first (the first 100)", query=AuctionQuery,
           responses={200: AuctionList}, errors=(400,))
async def list_auctions(request: web.Request, *, query: AuctionQuery) -> web.Response:
    found = await service.auctions_by_status(
        None if query.status is None else service.AuctionStatus(query.status),
        now=request.app[CLOCK].now())
    return json(AuctionList(items=await auctions_out(found, request)))


@api.route("GET", "/api/v1/auctions/{auction_id}", tag="auctions",
           summary="An auction; its status follows the clock, and a read after the end "
                   "settles the result if the close job has not yet",
           path_params=AuctionPath, responses={200: AuctionOut}, errors=(400, 404))
async def get_auction(request: web.Request, *, path: AuctionPath) -> web.Response:
    auction = await service.auction_by_id(path.auction_id)
    await service.request_close_if_due(request.app[AUCTION_COMMANDS], auction)
    (shown,) = await auctions_out([auction], request)
    return json(shown)


@api.route("GET", "/api/v1/auctions/{auction_id}/bids", tag="auctions",
           summary="The auction's bids, newest first (the latest 100)", path_params=AuctionPath,
           responses={200: BidList}, errors=(400, 404))
async def list_bids(request: web.Request, *, path: AuctionPath) -> web.Response:
    auction = await service.auction_by_id(path.auction_id)
    zone = service_zone(request)
    return json(BidList(items=[
        PlacedBidOut(amount=bid.amount, bidder_alias=service.alias(bid.bidder_no),
                     leading=bid.leading, at=bid.placed_at.astimezone(zone))
        for bid in await service.bids_of(auction.id)]))


@api.route("GET", "/api/v1/auctions/{auction_id}/me", tag="auctions",
           summary="Where you stand: your alias on the auction's stream once you have bid "
                   "(so a page knows which leader is you), and whether you lead",
           path_params=AuctionPath, auth=True, responses={200: YourStandingOut},
           errors=(400, 401, 404))
async def your_standing(request: web.Request, *, path: AuctionPath,
                        principal: Principal) -> web.Response:
    auction = await service.auction_by_id(path.auction_id)
    number = (await service.bidder_numbers(auction.id, [principal.user_id])).get(
        principal.user_id)
    return json(YourStandingOut(
        bidder_alias=None if number is None else service.alias(number),
        leading=auction.leader_id == principal.user_id))  # type: ignore[attr-defined]


@api.route("GET", "/api/v1/auctions/{auction_id}/stream", tag="auctions",
           summary="The auction as text/event-stream, for anyone: auction.bid {price, "
                   "leader_alias, ends_at}, auction.extended, auction.closed {winner_alias, "
                   "final_price}, auction.cancelled; resumes after Last-Event-ID, or "
                   "?last_event_id= when no header is sent",
           path_params=AuctionPath, query=WatchQuery, responses={200: "text/event-stream"},
           errors=(400, 404))
async def watch_auction(request: web.Request, *, path: AuctionPath,
                        query: WatchQuery) -> web.StreamResponse:
    auction = await service.auction_by_id(path.auction_id)
    cursor = last_event_id(request, query.last_event_id)
    return await serve_stream(request, doorbells=request.app[AUCTION_DOORBELLS],
                              owner=auction.id, reads=request.app[AUCTION_EVENTS],
                              cursor=cursor, encode=_watched_event)


def _watched_event(row: AuctionEvent) -> str:
    data = json_text.dumps({"id": row.id, **row.payload}, ensure_ascii=False)
    return f"id: {row.id}\nevent: {row.type}\ndata: {data}\n\n"


@api.route("POST", "/api/v1/auctions/{auction_id}/bids", tag="auctions",
           summary="Bid: 202 with your place in line, or with Prefer: wait=N 201/409 once "
                   "decided (auction_not_open, bid_too_low, insufficient_coupons, "
                   "already_leading). Judged at the moment it was accepted here. A proxy "
                   "bid that the leader's proxy outbids at once answers 201 leading: false",
           path_params=AuctionPath, body=BidBody, headers=ReservationHeaders, auth=True,
           responses={202: ReservationAccepted, 201: BidOut}, errors=(400, 401, 404, 409))
async def place_bid(request: web.Request, *, path: AuctionPath, body: BidBody,
                    headers: ReservationHeaders, principal: Principal) -> web.Response:
    queued = await service.request_bid(
        request.app[AUCTION_COMMANDS], request.app[AUCTION_WINDOWS], principal=principal,
        auction_id=path.auction_id,
        amount=body.amount, max_amount=body.max_amount, idempotency_key=headers.idempotency_key)
    result = await result_within(request.app, principal, queued, prefer=headers.prefer,
                                 refused=service.BidRefused)
    if result is None:
        return accepted(queued)
    return json(BidOut(bid_id=result["bid_id"], amount=result["amount"],
                       leading=result["leading"], price=result["price"]), 201)


@api.route("DELETE", "/api/v1/auctions/{auction_id}", tag="auctions",
           summary="Cancel an auction: its creator before the first bid, an admin any time; "
                   "the leader's hold is released and bidders are told. 403 "
                   "not_auction_creator; 409 auction_not_cancellable",
           path_params=AuctionPath, auth=True,
           responses={204: None, 202: CommandAccepted}, errors=(401, 403, 404, 409))
async def cancel_auction(request: web.Request, *, path: AuctionPath,
                         principal: Principal) -> web.Response:
    queued = await service.request_cancel(request.app[AUCTION_COMMANDS], principal=principal,
                                          auction_id=path.auction_id)
    return await decided_within(request.app, principal, queued,
                                timeout_seconds=CANCEL_WAIT_SECONDS, refused=service.BidRefused)
