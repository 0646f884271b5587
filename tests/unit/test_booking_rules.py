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


def test_refunds_are_full_a_day_ahead_none_later_and_refused_after_the_start() -> None:
    from datetime import UTC, datetime, timedelta

    from fitnus.booking.rules import refund_for_cancellation

    start = datetime(2030, 1, 10, 10, tzinfo=UTC)
    refund = lambda **delta: refund_for_cancellation(  # noqa: E731
        price=12, starts_at=start, now=start - timedelta(**delta))
    assert refund(hours=24) == 12
    assert refund(hours=23, minutes=59) == 0
    assert refund(seconds=1) == 0
    assert refund(seconds=0) is None
    assert refund(hours=-1) is None


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
