"""When bookable timeslots start, remembered by each web process.

A flash crowd sends thousands of requests for one timeslot within a second.
Each must know that the timeslot exists and has not started, and that answer
changes only when its center is deleted (a start time never changes). So each
process reads it from MySQL once, with one read in flight per timeslot however
many requests wait for it, and keeps it for a while: a timeslot whose center
was deleted can still be queued for that long, and the worker refuses it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

# Reads the start (POSIX seconds) of a bookable timeslot, or None if there is none.
ReadStart = Callable[[int], Awaitable[float | None]]

REMEMBER_SECONDS = 600.0
MAX_TIMESLOTS = 10_000


class TimeslotStarts:
    def __init__(
        self, read: ReadStart, *, remember_seconds: float = REMEMBER_SECONDS,
        max_timeslots: int = MAX_TIMESLOTS, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._remember_seconds = remember_seconds
        self._max_timeslots = max_timeslots
        self._monotonic = monotonic
        self._known: OrderedDict[int, tuple[float, float]] = OrderedDict()
        self._reading: dict[int, asyncio.Task[float | None]] = {}

    async def start_of(self, timeslot_id: int) -> float | None:
        """The timeslot's start, or None if there is no bookable timeslot of that id."""
        known = self._known.get(timeslot_id)
        if known is not None and known[1] > self._monotonic():
            return known[0]
        reading = self._reading.get(timeslot_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read_and_remember(timeslot_id))
            self._reading[timeslot_id] = reading
        # Shielded: a caller that gives up must not cancel the read the others wait for.
        return await asyncio.shield(reading)

    async def _read_and_remember(self, timeslot_id: int) -> float | None:
        try:
            starts_at = await self._read(timeslot_id)
        finally:
            del self._reading[timeslot_id]
        if starts_at is not None:
            self._known[timeslot_id] = (starts_at, self._monotonic() + self._remember_seconds)
            self._known.move_to_end(timeslot_id)
            while len(self._known) > self._max_timeslots:
                self._known.popitem(last=False)
        return starts_at
