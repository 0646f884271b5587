"""The bid rule, table-driven: increments, plain and proxy bids, soft close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fitnus.auctions import rules

START = datetime(2026, 12, 1, 10, tzinfo=UTC)
END = START + timedelta(hours=1)
TERMS = rules.Terms(starts_at=START, starting_price=10, soft_close=timedelta(seconds=120),
                    max_extensions=2)
A, B, C = 1, 2, 3


def rich(user: int) -> int:
    return 10_000


@pytest.mark.parametrize(("price", "step"), [
    (0, 1), (49, 1), (50, 2), (199, 2), (200, 5), (999, 5), (1_000, 10), (50_000, 10)])
def test_increments_by_price(price: int, step: int) -> None:
    assert rules.DEFAULT_INCREMENTS.after(price) == step


def bid(user: int, *, amount: int | None = None, max_amount: int | None = None,
        at: datetime = START + timedelta(minutes=1)) -> rules.BidRequest:
    return rules.BidRequest(user_id=user, accepted_at=at, amount=amount, max_amount=max_amount)


def standing(price: int | None = None, leader: int | None = None,
             leader_max: int | None = None) -> rules.Standing:
    return rules.Standing(ends_at=END, price=price, leader=leader,
                          leader_max=leader_max if leader_max is not None else price)


@pytest.mark.parametrize(("before", "request_", "outcome", "price", "leader"), [
    # The first bid: at least the starting price.
    (standing(), bid(A, amount=9), rules.BID_TOO_LOW, None, None),
    (standing(), bid(A, amount=10), rules.PLACED, 10, A),
    (standing(), bid(A, amount=25), rules.PLACED, 25, A),
    # Then the price plus its increment.
    (standing(10, A), bid(B, amount=10), rules.BID_TOO_LOW, 10, A),
    (standing(10, A), bid(B, amount=11), rules.PLACED, 11, B),
    (standing(200, A), bid(B, amount=204), rules.BID_TOO_LOW, 200, A),
    (standing(200, A), bid(B, amount=205), rules.PLACED, 205, B),
    (standing(10, A), bid(A, amount=20), rules.ALREADY_LEADING, 10, A),
    # A proxy opens at the starting price, not its maximum.
    (standing(), bid(A, max_amount=100), rules.PLACED, 10, A),
    # Two maxima: the higher wins at the lower + one increment...
    (standing(10, A, 60), bid(B, max_amount=100), rules.PLACED, 62, B),
    # ...capped at the higher.
    (standing(10, A, 60), bid(B, max_amount=61), rules.PLACED, 61, B),
    # Equal maxima: the earlier wins, at that maximum.
    (standing(10, A, 60), bid(B, max_amount=60), rules.PLACED, 60, A),
    # A lower maximum: the leader's proxy answers with one increment more.
    (standing(10, A, 60), bid(B, max_amount=30), rules.PLACED, 31, A),
    # A plain bid under the leader's maximum is answered the same way.
    (standing(10, A, 60), bid(B, amount=40), rules.PLACED, 41, A),
    # A plain bid over it leads at its own amount.
    (standing(10, A, 60), bid(B, amount=70), rules.PLACED, 70, B),
    # Not open: before the start, at or after the end.
    (standing(), bid(A, amount=10, at=START - timedelta(seconds=1)), rules.AUCTION_NOT_OPEN,
     None, None),
    (standing(), bid(A, amount=10, at=END), rules.AUCTION_NOT_OPEN, None, None),
])
def test_a_bid_against_the_standing(before: rules.Standing, request_: rules.BidRequest,
                                    outcome: str, price: int | None, leader: int | None) -> None:
    decided = rules.decide_bid(before, TERMS, request_, rich)
    assert (decided.outcome, decided.standing.price, decided.standing.leader) == (
        outcome, price, leader)


def test_nobody_bids_more_than_they_can_pay() -> None:
    budgets = {A: 50, B: 30}
    decided = rules.decide_bid(standing(10, A), TERMS, bid(B, amount=40), budgets.__getitem__)
    assert decided.outcome == rules.INSUFFICIENT_COUPONS
    # A proxy reaches only as far as the coupons go; the leader's defends as far as theirs.
    proxy = rules.decide_bid(standing(10, A, 100), TERMS, bid(B, max_amount=500),
                             budgets.__getitem__)
    assert (proxy.outcome, proxy.standing.leader, proxy.standing.price) == (
        rules.PLACED, A, 31)


@pytest.mark.parametrize(("leader_can_pay", "price"), [
    (0, 11), (5, 11), (10, 11), (30, 31), (60, 62)])
def test_a_proxy_never_takes_the_lead_below_the_next_bid(leader_can_pay: int,
                                                          price: int) -> None:
    """The leader bid 10 with a proxy up to 60, and then coupons they held
    expired: what the leader can still pay defends, never less than the price."""
    budgets = {A: leader_can_pay, B: 100}
    decided = rules.decide_bid(standing(10, A, 60), TERMS, bid(B, max_amount=100),
                               budgets.__getitem__)
    assert (decided.outcome, decided.standing.leader, decided.standing.price) == (
        rules.PLACED, B, price)


def test_a_bid_in_the_last_window_extends_up_to_the_cap() -> None:
    current, ends = standing(), []
    for user, amount, seconds in ((A, 10, -30), (B, 11, 60), (C, 12, 150), (A, 13, 180)):
        decided = rules.decide_bid(current, TERMS, bid(user, amount=amount,
                                                       at=END + timedelta(seconds=seconds)), rich)
        current = decided.standing
        ends.append((decided.outcome, (current.ends_at - END).seconds, current.extensions))
    # Each bid in the window moves the end to its time + 120 s, twice at most;
    # a bid at the (extended) end is refused.
    assert ends == [(rules.PLACED, 90, 1), (rules.PLACED, 180, 2), (rules.PLACED, 180, 2),
                    (rules.AUCTION_NOT_OPEN, 180, 2)]
    early = rules.decide_bid(standing(), TERMS, bid(A, amount=10), rich).standing
    assert (early.ends_at, early.extensions) == (END, 0)
