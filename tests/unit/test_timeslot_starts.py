"""A web process reads a timeslot's start once, however many requests ask at once."""

from __future__ import annotations

import asyncio

import pytest

from fitnus.booking.starts import TimeslotStarts


class Reads:
    """A MySQL stand-in that counts reads and answers when released."""

    def __init__(self, starts: dict[int, float]) -> None:
        self.starts = starts
        self.count = 0
        self.release = asyncio.Event()

    async def __call__(self, timeslot_id: int) -> float | None:
        self.count += 1
        await self.release.wait()
        return self.starts.get(timeslot_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_crowd_waits_for_one_read() -> None:
    reads = Reads({7: 1_900_000_000.0})
    starts = TimeslotStarts(reads)
    crowd = [asyncio.create_task(starts.start_of(7)) for _ in range(500)]
    await asyncio.sleep(0)
    reads.release.set()
    assert set(await asyncio.gather(*crowd)) == {1_900_000_000.0}
    assert reads.count == 1
    assert await starts.start_of(7) == 1_900_000_000.0
    assert reads.count == 1


async def test_remembered_for_a_while_then_read_again() -> None:
    reads, clock = Reads({7: 1.0}), Clock()
    reads.release.set()
    starts = TimeslotStarts(reads, remember_seconds=60, monotonic=clock)
    await starts.start_of(7)
    clock.now += 59
    await starts.start_of(7)
    assert reads.count == 1
    clock.now += 2
    await starts.start_of(7)
    assert reads.count == 2


async def test_an_unknown_timeslot_is_asked_again_every_time() -> None:
    reads = Reads({})
    reads.release.set()
    starts = TimeslotStarts(reads)
    assert await starts.start_of(404) is None
    assert await starts.start_of(404) is None
    assert reads.count == 2


async def test_the_oldest_timeslots_are_forgotten_first() -> None:
    reads = Reads({n: float(n) for n in range(10)})
    reads.release.set()
    starts = TimeslotStarts(reads, max_timeslots=3)
    for timeslot_id in (1, 2, 3, 4):
        await starts.start_of(timeslot_id)
    await starts.start_of(4)
    assert reads.count == 4
    await starts.start_of(1)
    assert reads.count == 5


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    reads = Reads({7: 3.0})
    starts = TimeslotStarts(reads)
    impatient = asyncio.create_task(starts.start_of(7))
    patient = asyncio.create_task(starts.start_of(7))
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.sleep(0)
    reads.release.set()
    assert await patient == 3.0
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_failed_read_reaches_every_waiter_and_is_retried() -> None:
    attempts = 0

    async def failing_once(timeslot_id: int) -> float | None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise ConnectionError("database away")
        return 5.0

    starts = TimeslotStarts(failing_once)
    results = await asyncio.gather(starts.start_of(1), starts.start_of(1),
                                   return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert await starts.start_of(1) == 5.0
