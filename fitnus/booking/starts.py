"""When bookable timeslots start, remembered by each web process.

A flash crowd sends thousands of requests for one timeslot within a second.
Each must know that the timeslot exists and has not started, and that answer
changes only when its center is deleted (a start time never changes). So each
process reads it from MySQL once (fitnus.remembered) and keeps it for a
while: a timeslot whose center was deleted can still be queued for that
long, and the worker refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fitnus.remembered import Remembered

# Reads the start (POSIX seconds) of a bookable timeslot, or None if there is none.
ReadStart = Callable[[int], Awaitable[float | None]]

REMEMBER_SECONDS = 600.0
MAX_TIMESLOTS = 10_000


class TimeslotStarts(Remembered[float]):
    def __init__(
        self, read: ReadStart, *, remember_seconds: float = REMEMBER_SECONDS,
        max_timeslots: int = MAX_TIMESLOTS, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(read, remember_seconds=remember_seconds, max_keys=max_timeslots,
                         monotonic=monotonic)

    async def start_of(self, timeslot_id: int) -> float | None:
        """The timeslot's start, or None if there is no bookable timeslot of that id."""
        return await self.get(timeslot_id)
