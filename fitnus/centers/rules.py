"""Pure rules for what owners publish: vocabulary, limits, overlaps, weekly patterns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SPORTS = (
    "gym", "pilates", "yoga", "boxing", "climbing", "swimming", "basketball", "futsal",
    "running", "crossfit", "dance", "golf", "tennis", "badminton", "spinning",
)
MIN_PRICE_COUPONS, MAX_PRICE_COUPONS = 0, 1000
MIN_DURATION_MINUTES, MAX_DURATION_MINUTES = 10, 600
MIN_CAPACITY, MAX_CAPACITY = 1, 10_000
MAX_WEEKLY_TIMESLOTS = 500
MAX_WEEKLY_RANGE_DAYS = 366
# How far ahead a session may be published: a product rule, and it keeps
# start + duration far from datetime's year-9999 edge.
MAX_ADVANCE_DAYS = 730


@dataclass(frozen=True)
class Interval:
    starts_at: datetime
    ends_at: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


def first_overlap(new: Iterable[Interval], existing: Iterable[Interval]) -> Interval | None:
    """The first new interval that overlaps an existing one or another new one."""
    placed = sorted(existing, key=lambda interval: interval.starts_at)
    for candidate in sorted(new, key=lambda interval: interval.starts_at):
        if any(candidate.overlaps(other) for other in placed):
            return candidate
        placed.append(candidate)
    return None


def weekly_starts(
    *, weekdays: Iterable[int], start_times: Iterable[time], first_day: date, last_day: date,
    time_zone: ZoneInfo,
) -> list[datetime]:
    """Every start of a weekly pattern, in local time, between two days inclusive.

    ``weekdays`` are ISO numbers (1 = Monday). Local times are resolved in
    ``time_zone`` (Asia/Seoul has no DST, but the rule does not assume it).
    """
    days = set(weekdays)
    starts: list[datetime] = []
    day = first_day
    while day <= last_day:
        if day.isoweekday() in days:
            starts.extend(
                datetime.combine(day, start, tzinfo=time_zone) for start in start_times
            )
        day += timedelta(days=1)
    return sorted(starts)
