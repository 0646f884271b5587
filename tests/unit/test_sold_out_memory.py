"""A web process remembers a full timeslot until it hears it reopened."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from fitnus.booking.sold_out import SoldOutMemory


class Channel:
    """The reopening announcements, as ChannelListener delivers them."""

    def __init__(self) -> None:
        self.watchers: dict[str, set[asyncio.Event]] = defaultdict(set)

    def watch(self, name: str) -> asyncio.Event:
        event = asyncio.Event()
        self.watchers[name].add(event)
        return event

    def unwatch(self, name: str, event: asyncio.Event) -> None:
        self.watchers[name].discard(event)

    def announce(self, name: str) -> None:
        for event in self.watchers[name]:
            event.set()

    def listening(self) -> int:
        return sum(len(events) for events in self.watchers.values())


class Flag:
    def __init__(self, full: bool) -> None:
        self.full = full
        self.asked = 0

    async def __call__(self) -> bool:
        self.asked += 1
        return self.full


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def memory(channel: Channel, clock: Clock | None = None) -> SoldOutMemory:
    return SoldOutMemory(watch=channel.watch, unwatch=channel.unwatch, remember_seconds=5,
                         monotonic=clock or Clock())


async def test_seen_full_then_refused_without_asking() -> None:
    channel, flag = Channel(), Flag(full=True)
    sold_out = memory(channel)
    assert all([await sold_out.is_full(7, flag) for _ in range(100)])
    assert flag.asked == 1


async def test_an_open_timeslot_is_asked_every_time_and_leaves_no_listener() -> None:
    channel, flag = Channel(), Flag(full=False)
    sold_out = memory(channel)
    assert not any([await sold_out.is_full(7, flag) for _ in range(3)])
    assert flag.asked == 3
    assert channel.listening() == 0


async def test_a_reopening_is_heard() -> None:
    channel, flag = Channel(), Flag(full=True)
    sold_out = memory(channel)
    assert await sold_out.is_full(7, flag)
    flag.full = False
    channel.announce("7")
    assert not await sold_out.is_full(7, flag)
    assert flag.asked == 2
    assert channel.listening() == 0


async def test_a_reopening_announced_while_asking_is_not_missed() -> None:
    channel = Channel()
    sold_out = memory(channel)

    async def full_then_reopened() -> bool:
        # The flag said full; the worker deletes it and announces before the
        # answer reaches this process.
        channel.announce("7")
        return True

    assert await sold_out.is_full(7, full_then_reopened)
    assert not await sold_out.is_full(7, Flag(full=False))


async def test_forgotten_after_a_while_in_case_an_announcement_was_lost() -> None:
    channel, flag, clock = Channel(), Flag(full=True), Clock()
    sold_out = memory(channel, clock)
    await sold_out.is_full(7, flag)
    clock.now += 4.9
    await sold_out.is_full(7, flag)
    assert flag.asked == 1
    clock.now += 0.2
    await sold_out.is_full(7, flag)
    assert flag.asked == 2


async def test_forget_lets_the_next_request_ask() -> None:
    channel, flag = Channel(), Flag(full=True)
    sold_out = memory(channel)
    await sold_out.is_full(7, flag)
    sold_out.forget(7)
    assert channel.listening() == 0
    await sold_out.is_full(7, flag)
    assert flag.asked == 2


async def test_a_failed_ask_leaves_no_listener() -> None:
    channel = Channel()
    sold_out = memory(channel)

    async def redis_away() -> bool:
        raise ConnectionError("redis away")

    with pytest.raises(ConnectionError):
        await sold_out.is_full(7, redis_away)
    assert channel.listening() == 0
