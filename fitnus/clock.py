"""The one source of time. Tests inject a ``ManualClock`` and move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


system_clock = SystemClock()


def as_utc(moment: datetime) -> datetime:
    """For query parameters: tortoise converts aware datetimes to UTC when it
    saves them, but passes filter values to the database as they are."""
    return moment.astimezone(UTC)
