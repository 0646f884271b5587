"""The seat rule, without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fitnus.booking import rules
from fitnus.booking.rules import SeatRequest, decide_seats


def requests(*users: int) -> list[SeatRequest]:
    return [SeatRequest(position, f"c{position}", user) for position, user in
            enumerate(users, start=1)]


def outcomes(decisions: list[rules.SeatDecision]) -> list[str]:
    return [decision.outcome for decision in decisions]


def decide(batch: list[SeatRequest], **options: object) -> list[str]:
    settings: dict[str, object] = {"seats_left": 2, "price": 10, "holders": set(),
                                   "conflicting": set(), "is_open": True,
                                   "available": {user: 100 for user in range(10)}}
    settings.update(options)
    return outcomes(decide_seats(batch, **settings))  # type: ignore[arg-type]


def test_seats_go_to_the_first_positions_whatever_the_arrival_order() -> None:
    ordered = decide_seats(list(reversed(requests(1, 2, 3))), seats_left=2, price=1,
                           available={1: 5, 2: 5, 3: 5}, holders=set(), conflicting=set(),
                           is_open=True)
    assert [(d.request.position, d.outcome) for d in ordered] == [
        (1, rules.CONFIRMED), (2, rules.CONFIRMED), (3, rules.SOLD_OUT)
    ]


def test_a_person_gets_one_seat_however_often_they_ask() -> None:
    assert decide(requests(1, 1, 2)) == [rules.CONFIRMED, rules.ALREADY_RESERVED, rules.CONFIRMED]


def test_someone_who_cannot_pay_does_not_block_the_next_in_line() -> None:
    assert decide(requests(1, 2, 3), available={1: 5, 2: 10, 3: 10}) == [
        rules.INSUFFICIENT_COUPONS, rules.CONFIRMED, rules.CONFIRMED
    ]


def test_coupons_spent_in_the_batch_count() -> None:
    batch = [SeatRequest(1, "a", 1), SeatRequest(2, "b", 1)]
    assert decide(batch, available={1: 15}, seats_left=5) == [
        rules.CONFIRMED, rules.ALREADY_RESERVED
    ]


def test_holders_conflicts_and_closed_sessions_are_refused() -> None:
    assert decide(requests(1, 2), holders={1}, conflicting={2}) == [
        rules.ALREADY_RESERVED, rules.SCHEDULE_CONFLICT
    ]
    assert decide(requests(1), is_open=False) == [rules.TIMESLOT_CLOSED]


START = datetime(2030, 1, 10, 10, tzinfo=UTC)
PARTIAL = rules.CancellationPolicy(full_refund_hours=48, partial_refund_hours=12,
                                   partial_refund_percent=50)


@pytest.mark.parametrize(("policy", "before", "used", "expected"), [
    # The default: full 24 h ahead, nothing later but the month's first late one.
    (rules.CancellationPolicy(), {"hours": 24}, True, (12, rules.POLICY_FULL)),
    (rules.CancellationPolicy(), {"hours": 23, "minutes": 59}, True, (0, rules.LATE_NO_REFUND)),
    (rules.CancellationPolicy(), {"hours": 23, "minutes": 59}, False,
     (12, rules.FIRST_LATE_CANCEL_FREE)),
    (rules.CancellationPolicy(), {"seconds": 1}, True, (0, rules.LATE_NO_REFUND)),
    (rules.CancellationPolicy(), {"seconds": 0}, False, None),
    (rules.CancellationPolicy(), {"hours": -1}, False, None),
    # Full 48 h ahead, half 12 h ahead (rounded down), nothing later.
    (PARTIAL, {"hours": 48}, True, (12, rules.POLICY_FULL)),
    (PARTIAL, {"hours": 47, "minutes": 59}, True, (6, rules.POLICY_PARTIAL)),
    (PARTIAL, {"hours": 12}, True, (6, rules.POLICY_PARTIAL)),
    (PARTIAL, {"hours": 11, "minutes": 59}, True, (0, rules.LATE_NO_REFUND)),
    (PARTIAL, {"hours": 11, "minutes": 59}, False, (12, rules.FIRST_LATE_CANCEL_FREE)),
    # No notice asked: full until the start.
    (rules.CancellationPolicy(full_refund_hours=0), {"seconds": 1}, True,
     (12, rules.POLICY_FULL)),
])
def test_the_refund_follows_the_policy_at_every_boundary(
    policy: rules.CancellationPolicy, before: dict[str, int], used: bool,
    expected: tuple[int, str] | None,
) -> None:
    refund = rules.refund_for_cancellation(price=12, starts_at=START,
                                           now=START - timedelta(**before), policy=policy,
                                           late_cancel_used=used)
    assert (None if refund is None else (refund.coupons, refund.reason)) == expected


def test_a_free_sessions_late_cancellation_keeps_the_months_free_one() -> None:
    refund = rules.refund_for_cancellation(price=0, starts_at=START,
                                           now=START - timedelta(hours=1))
    assert refund == rules.Refund(0, rules.LATE_NO_REFUND)


def test_a_partial_refund_rounds_down_to_whole_coupons() -> None:
    policy = rules.CancellationPolicy(full_refund_hours=24, partial_refund_hours=2,
                                      partial_refund_percent=33)
    refund = rules.refund_for_cancellation(price=10, starts_at=START,
                                           now=START - timedelta(hours=3), policy=policy,
                                           late_cancel_used=True)
    assert refund == rules.Refund(3, rules.POLICY_PARTIAL)


@pytest.mark.parametrize(("policy", "valid"), [
    (rules.CancellationPolicy(), True),
    (PARTIAL, True),
    (rules.CancellationPolicy(full_refund_hours=-1), False),
    (rules.CancellationPolicy(full_refund_hours=rules.MAX_POLICY_HOURS + 1), False),
    (rules.CancellationPolicy(partial_refund_hours=12), False),
    (rules.CancellationPolicy(partial_refund_percent=50), False),
    (rules.CancellationPolicy(partial_refund_hours=24, partial_refund_percent=50), False),
    (rules.CancellationPolicy(partial_refund_hours=1, partial_refund_percent=100), False),
    (rules.CancellationPolicy(partial_refund_hours=1, partial_refund_percent=0), False),
])
def test_a_policy_is_checked_before_it_is_set(
    policy: rules.CancellationPolicy, valid: bool
) -> None:
    assert (policy.problems() == []) == valid


SEOUL = ZoneInfo("Asia/Seoul")


@pytest.mark.parametrize(("start", "target", "expected"), [
    # 1st Tuesday of December 2026 -> 1st Tuesday of January 2027
    (datetime(2026, 12, 1, 7, 30, tzinfo=SEOUL), (2027, 1), datetime(2027, 1, 5, 7, 30)),
    # 2nd Friday -> 2nd Friday, across the year and a month that starts on a Friday
    (datetime(2026, 12, 11, 19, 0, tzinfo=SEOUL), (2027, 1), datetime(2027, 1, 8, 19, 0)),
    # 4th Thursday of December -> 4th Thursday of February
    (datetime(2026, 12, 24, 6, 0, tzinfo=SEOUL), (2027, 2), datetime(2027, 2, 25, 6, 0)),
    # 5th Thursday of December: February 2027 has only four
    (datetime(2026, 12, 31, 6, 0, tzinfo=SEOUL), (2027, 2), None),
])
def test_a_session_repeats_on_the_same_weekday_of_the_same_week(
    start: datetime, target: tuple[int, int], expected: datetime | None
) -> None:
    repeated = rules.repeated_start(start, year=target[0], month=target[1])
    if expected is None:
        assert repeated is None
    else:
        assert repeated == expected.replace(tzinfo=SEOUL)
        assert repeated is not None
        assert repeated.weekday() == start.weekday()


NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
MOVABLE = rules.MoveFacts(
    old_starts_at=NOW + timedelta(days=2), accepted_at=NOW, target_open=True,
    holds_target=False, conflicting=False, seats_left=1, available=0, price_difference=0,
)


@pytest.mark.parametrize(("changes", "outcome"), [
    ({}, rules.CONFIRMED),
    ({"old_starts_at": None}, rules.NOT_RESERVED),
    ({"old_starts_at": NOW}, rules.ALREADY_STARTED),
    ({"old_starts_at": NOW + timedelta(hours=23, minutes=59)}, rules.MOVE_WINDOW_CLOSED),
    ({"old_starts_at": NOW + timedelta(hours=24)}, rules.CONFIRMED),
    # A booking made under a 48 h notice moves only while that refunds in full.
    ({"old_starts_at": NOW + timedelta(hours=47), "full_refund_hours": 48},
     rules.MOVE_WINDOW_CLOSED),
    ({"old_starts_at": NOW + timedelta(hours=48), "full_refund_hours": 48}, rules.CONFIRMED),
    ({"old_starts_at": NOW + timedelta(hours=1), "full_refund_hours": 0}, rules.CONFIRMED),
    ({"target_open": False}, rules.TIMESLOT_CLOSED),
    ({"holds_target": True}, rules.ALREADY_RESERVED),
    ({"conflicting": True}, rules.SCHEDULE_CONFLICT),
    ({"seats_left": 0}, rules.SOLD_OUT),
    ({"price_difference": 3, "available": 2}, rules.INSUFFICIENT_COUPONS),
    ({"price_difference": 3, "available": 3}, rules.CONFIRMED),
    ({"price_difference": -5}, rules.CONFIRMED),
])
def test_a_move_is_decided_from_when_it_was_accepted(
    changes: dict[str, object], outcome: str
) -> None:
    assert rules.decide_move(replace(MOVABLE, **changes)) == outcome  # type: ignore[arg-type]
