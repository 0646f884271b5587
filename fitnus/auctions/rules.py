"""How a bid is decided: plain functions over the auction's standing, no I/O.

The standing is the price, the leader and how far the leader's proxy would
go. A plain bid bids its amount; a proxy bid (``max_amount``) bids the least
that leads, up to its maximum. Between two maxima the higher wins at the
lower maximum plus one increment, capped at the higher; equal maxima: the
earlier wins. The leader's proxy defends only as far as the leader can pay.
A bid counts when it was accepted (stamped by the web tier) before the end,
and one in the last ``soft_close`` moves the end to its time plus the window,
up to ``max_extensions`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

PLACED = "placed"
AUCTION_NOT_OPEN = "auction_not_open"
BID_TOO_LOW = "bid_too_low"
INSUFFICIENT_COUPONS = "insufficient_coupons"
ALREADY_LEADING = "already_leading"


@dataclass(frozen=True)
class Increments:
    """The least raise over a price: ``steps`` of (below this price, this
    step), and ``top`` above the last."""

    steps: tuple[tuple[int, int], ...] = ((50, 1), (200, 2), (1_000, 5))
    top: int = 10

    def after(self, price: int) -> int:
        return next((step for below, step in self.steps if price < below), self.top)


DEFAULT_INCREMENTS = Increments()


@dataclass(frozen=True)
class Terms:
    starts_at: datetime
    starting_price: int
    soft_close: timedelta
    max_extensions: int | None
    increments: Increments = DEFAULT_INCREMENTS


@dataclass(frozen=True)
class Standing:
    ends_at: datetime
    price: int | None = None
    leader: int | None = None
    leader_max: int | None = None
    extensions: int = 0


@dataclass(frozen=True)
class BidRequest:
    user_id: int
    accepted_at: datetime
    amount: int | None = None
    max_amount: int | None = None

    @property
    def is_proxy(self) -> bool:
        return self.max_amount is not None


@dataclass(frozen=True)
class Decided:
    outcome: str
    standing: Standing
    # What the bid itself reached, and whether it leads after it.
    amount: int = 0
    leading: bool = False


def min_next_bid(standing: Standing, terms: Terms) -> int:
    if standing.price is None:
        return terms.starting_price
    return standing.price + terms.increments.after(standing.price)


def is_open(standing: Standing, terms: Terms, at: datetime) -> bool:
    return terms.starts_at <= at < standing.ends_at


def decide_bid(standing: Standing, terms: Terms, bid: BidRequest,
               can_pay: Callable[[int], int]) -> Decided:
    """``can_pay(user)``: the most that person could have held in this
    auction (their available coupons, with what they hold here now)."""
    refused = Decided
    if not is_open(standing, terms, bid.accepted_at):
        return refused(AUCTION_NOT_OPEN, standing)
    if bid.user_id == standing.leader:
        return refused(ALREADY_LEADING, standing)
    floor = min_next_bid(standing, terms)
    wanted = bid.max_amount if bid.is_proxy else bid.amount
    assert wanted is not None
    if wanted < floor:
        return refused(BID_TOO_LOW, standing)
    reach = min(wanted, can_pay(bid.user_id))
    if reach < (floor if bid.is_proxy else wanted):
        return refused(INSUFFICIENT_COUPONS, standing)
    step = terms.increments.after
    if standing.leader is None:
        price = floor if bid.is_proxy else reach
        return _placed(standing, terms, bid, price=price, leader=bid.user_id, leader_max=wanted,
                       amount=price)
    defends = min(standing.leader_max or 0, can_pay(standing.leader))
    if reach > defends:
        # A leader who can no longer pay what they bid (their coupons expired)
        # defends below the price; the price still never falls.
        price = max(floor, min(reach, defends + step(defends))) if bid.is_proxy else reach
        return _placed(standing, terms, bid, price=price, leader=bid.user_id, leader_max=wanted,
                       amount=price)
    # The leader's proxy answers: the least that still leads, or all it has
    # against an equal maximum (the earlier wins).
    price = min(defends, reach + step(reach))
    return _placed(standing, terms, bid, price=price, leader=standing.leader,
                   leader_max=standing.leader_max, amount=reach)


def _placed(standing: Standing, terms: Terms, bid: BidRequest, *, price: int, leader: int,
            leader_max: int | None, amount: int) -> Decided:
    ends_at, extensions = standing.ends_at, standing.extensions
    late = bid.accepted_at + terms.soft_close
    if late > ends_at and (terms.max_extensions is None or extensions < terms.max_extensions):
        ends_at, extensions = late, extensions + 1
    after = replace(standing, price=price, leader=leader, leader_max=leader_max,
                    ends_at=ends_at, extensions=extensions)
    return Decided(PLACED, after, amount=amount, leading=leader == bid.user_id)
