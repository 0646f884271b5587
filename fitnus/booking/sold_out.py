"""Timeslots a web process has seen full, refused without asking Redis again.

In a flash crowd nearly every request comes after the last seat went, and each
one asking Redis "is it full?" is most of what the web tier spends on it. A
process that saw the sold-out flag remembers it until the worker announces
that the timeslot reopened (a cancellation freed a seat) on a channel every
web process listens to, and for ``remember_seconds`` at most, because an
announcement is lost while a subscription reconnects.

The process starts listening for a timeslot's reopening before it asks, so an
announcement made while the answer is on its way is not missed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from fitnus.keyed_queue import KeyedQueue
from fitnus.redis_client import RedisClient

Watch = Callable[[str], asyncio.Event]
Unwatch = Callable[[str, asyncio.Event], None]

REMEMBER_SECONDS = 5.0
# Past this many remembered timeslots, expired ones are swept out on the next remember.
SWEEP_ABOVE = 1_000


class SoldOutMemory:
    def __init__(
        self, *, watch: Watch, unwatch: Unwatch, remember_seconds: float = REMEMBER_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._watch = watch
        self._unwatch = unwatch
        self._remember_seconds = remember_seconds
        self._monotonic = monotonic
        self._known: dict[int, tuple[float, asyncio.Event]] = {}

    async def is_full(self, timeslot_id: int, ask: Callable[[], Awaitable[bool]]) -> bool:
        """Whether the timeslot is known full; ``ask`` reads the shared flag."""
        known = self._known.get(timeslot_id)
        if known is not None:
            until, reopened = known
            if until > self._monotonic() and not reopened.is_set():
                return True
            self.forget(timeslot_id)
        reopened = self._watch(str(timeslot_id))
        try:
            full = await ask()
        except BaseException:
            self._unwatch(str(timeslot_id), reopened)
            raise
        if full and not reopened.is_set() and timeslot_id not in self._known:
            if len(self._known) >= SWEEP_ABOVE:
                self._sweep()
            self._known[timeslot_id] = (self._monotonic() + self._remember_seconds, reopened)
        else:
            self._unwatch(str(timeslot_id), reopened)
        return full

    def _sweep(self) -> None:
        now = self._monotonic()
        for timeslot_id, (until, reopened) in list(self._known.items()):
            if until <= now or reopened.is_set():
                self.forget(timeslot_id)

    def forget(self, timeslot_id: int) -> None:
        """This process is about to free a seat there (a cancellation)."""
        known = self._known.pop(timeslot_id, None)
        if known is not None:
            self._unwatch(str(timeslot_id), known[1])


async def flag_fullness(
    redis: RedisClient, queue: KeyedQueue, key: int, *, full: bool, token: int,
    reopened_channel: Callable[[str], str], freed: Iterable[int] = (),
) -> None:
    """After a batch committed under ``token``: the shared flag follows the
    committed count both ways. A key that filled is flagged, unless a newer
    drainer has the key by now (what it decided may have reopened it); one
    with a place again (and any other a move freed a place in) is unflagged,
    and web processes that remember it full hear so on ``reopened_channel``."""
    unflag = set(freed)
    if full:
        await queue.raise_flag_as_holder(key, "full", token)
    else:
        unflag.add(key)
    for reopened in unflag:
        if await redis.delete(queue.flag(reopened, "full")):
            await redis.publish(reopened_channel(str(reopened)), "1")
