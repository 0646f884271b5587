"""Answers a web process remembers for a while, per key.

A crowd sends thousands of requests for one thing (a timeslot, an auction)
within a second, and each needs a fact about it from MySQL. Each process
reads it once, with one read in flight per key however many requests wait
for it, and keeps it for ``remember_seconds``; only found answers are kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Remembered(Generic[T]):
    def __init__(
        self, read: Callable[[int], Awaitable[T | None]], *, remember_seconds: float,
        max_keys: int, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._remember_seconds = remember_seconds
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._known: OrderedDict[int, tuple[T, float]] = OrderedDict()
        self._reading: dict[int, asyncio.Task[T | None]] = {}

    async def get(self, key: int) -> T | None:
        """The answer for ``key``, or None if there is none."""
        known = self._known.get(key)
        if known is not None and known[1] > self._monotonic():
            return known[0]
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read_and_remember(key))
            self._reading[key] = reading
        # Shielded: a caller that gives up must not cancel the read the others wait for.
        return await asyncio.shield(reading)

    async def _read_and_remember(self, key: int) -> T | None:
        try:
            answer = await self._read(key)
        finally:
            del self._reading[key]
        if answer is not None:
            self._known[key] = (answer, self._monotonic() + self._remember_seconds)
            self._known.move_to_end(key)
            while len(self._known) > self._max_keys:
                self._known.popitem(last=False)
        return answer
