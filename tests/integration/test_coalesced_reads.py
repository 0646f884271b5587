"""Event streams woken together read their rows together, without losing or
repeating a row, on the real database."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from fitnus.clock import system_clock
from fitnus.notifications.models import Notification
from fitnus.notifications.reads import CoalescedReads, Seat
from fitnus.notifications.service import (
    StoredNotification,
    notification_owner,
    notifications_after_each,
)
from web.events import _event

TYPE = "test.coalesced"


async def rows_for(user_id: int, count: int) -> list[int]:
    now = system_clock.now()
    for number in range(count):
        await Notification.create(user_id=user_id, type=TYPE, payload={"n": number},
                                  dedupe_key=f"coalesced:{uuid.uuid4().hex}", created_at=now)
    return [row.id for row in
            await Notification.filter(user_id=user_id, type=TYPE).order_by("id")]


def ours(rows: list[StoredNotification]) -> list[int]:
    """The rows a test wrote (the worker may add a person's welcome at any time)."""
    return [row.id for row in rows if row.type == TYPE]


class CountedReads:
    def __init__(self) -> None:
        self.queries = 0

    async def __call__(
        self, cursors: dict[int, int], limit: int
    ) -> list[StoredNotification]:
        self.queries += 1
        return await notifications_after_each(cursors, limit)


@pytest.mark.portable
async def test_people_woken_together_share_one_query(sign_up: Any) -> None:
    people = [await sign_up() for _ in range(6)]
    ids = {person.id: await rows_for(person.id, 3) for person in people}
    counted = CountedReads()
    reads = CoalescedReads(counted, page=100, people_per_query=4, owner=notification_owner)
    # Each asks from after its first row; one person has two streams at different places.
    answers = await asyncio.gather(
        *(reads.after(person.id, ids[person.id][0]) for person in people),
        reads.after(people[0].id, ids[people[0].id][1]),
    )
    assert counted.queries == 2  # six people, four per query
    for person, answer in zip(people, answers, strict=False):
        assert ours(answer.rows) == ids[person.id][1:]
        assert {row.user_id for row in answer.rows} == {person.id}  # type: ignore[attr-defined]
        assert not answer.more
    assert ours(answers[-1].rows) == ids[people[0].id][2:]


@pytest.mark.portable
async def test_a_cut_answer_says_there_is_more_and_the_rest_follows(sign_up: Any) -> None:
    busy, quiet = await sign_up(), await sign_up()
    busy_ids = await rows_for(busy.id, 7)
    quiet_ids = await rows_for(quiet.id, 1)
    reads = CoalescedReads(notifications_after_each, page=3, owner=notification_owner)
    seen: dict[int, list[int]] = {busy.id: [], quiet.id: []}
    cursors = {busy.id: 0, quiet.id: 0}
    rounds = 0
    while cursors:
        rounds += 1
        answers = await asyncio.gather(*(reads.after(user, after) for user, after in
                                         cursors.items()))
        for (user, _), answer in zip(list(cursors.items()), answers, strict=True):
            seen[user] += ours(answer.rows)
            if answer.rows:
                cursors[user] = answer.rows[-1].id
            if not answer.more:
                del cursors[user]
    assert seen == {busy.id: busy_ids, quiet.id: quiet_ids}
    assert rounds >= 3


async def test_a_failed_query_reaches_every_stream_that_asked() -> None:
    async def broken(cursors: dict[int, int], limit: int) -> list[Notification]:
        raise ConnectionError("database away")

    reads = CoalescedReads(broken, page=10, owner=notification_owner)
    results = await asyncio.gather(reads.after(1, 0), reads.after(2, 0), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)


async def test_a_stream_that_leaves_does_not_spoil_the_others(sign_up: Any) -> None:
    stays, leaves = await sign_up(), await sign_up()
    stay_ids = await rows_for(stays.id, 2)
    await rows_for(leaves.id, 2)
    reads = CoalescedReads(notifications_after_each, page=10, owner=notification_owner)
    staying = asyncio.create_task(reads.after(stays.id, 0))
    leaving = asyncio.create_task(reads.after(leaves.id, 0))
    await asyncio.sleep(0)
    leaving.cancel()
    assert ours((await staying).rows) == stay_ids
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_asks_made_while_the_database_is_busy_wait_for_one_query(sign_up: Any) -> None:
    people = [await sign_up() for _ in range(5)]
    ids = {person.id: await rows_for(person.id, 1) for person in people}
    counted, release = CountedReads(), asyncio.Event()

    async def slow(cursors: dict[int, int], limit: int) -> list[Notification]:
        await release.wait()
        return await counted(cursors, limit)

    reads = CoalescedReads(slow, page=10, queries_at_once=1, owner=notification_owner)
    first = asyncio.create_task(reads.after(people[0].id, 0))
    await asyncio.sleep(0.01)  # the first query is running
    later = [asyncio.create_task(reads.after(person.id, 0)) for person in people[1:]]
    await asyncio.sleep(0.01)
    release.set()
    answers = await asyncio.gather(first, *later)
    assert counted.queries == 2
    assert [ours(answer.rows) for answer in answers] == [ids[person.id] for person in people]


@pytest.mark.portable
@pytest.mark.parametrize("payload", [
    {}, {"n": 1}, {"center": "강남 요가", "seats": [1, 2], "at": {"day": "2026-12-04"}},
    {"id": "a payload's own id wins, as a dict's would"},
])
async def test_an_event_is_its_stored_payload_with_the_id(
    sign_up: Any, payload: dict[str, Any],
) -> None:
    """The stream splices the stored JSON rather than decoding it: the data
    line must read back as the payload with the row's id, as before."""
    person = await sign_up()
    row = await Notification.create(user_id=person.id, type=TYPE, payload=payload,
                                    dedupe_key=f"spliced:{uuid.uuid4().hex}",
                                    created_at=system_clock.now())
    [stored] = [one for one in await notifications_after_each({person.id: row.id - 1}, 10)
                if one.id == row.id]
    lines = _event(stored).splitlines()
    assert lines[:2] == [f"id: {row.id}", f"event: {TYPE}"]
    assert json.loads(lines[2].removeprefix("data: ")) == {"id": row.id, **payload}


async def late_row_is_sent(sign_up: Any) -> bool:
    """A row committed after a stream's read took its snapshot, rung while
    that read's answer is on its way: does the stream's next wait read it?"""
    person = await sign_up()
    await rows_for(person.id, 1)
    late: list[int] = []

    async def read_then_ring(cursors: dict[int, int], limit: int) -> list[StoredNotification]:
        rows = await notifications_after_each(cursors, limit)
        if not late:
            late.append((await rows_for(person.id, 1))[-1])
            seat.set()
        return rows

    reads = CoalescedReads(read_then_ring, page=10, owner=notification_owner)
    seat = reads.seat(person.id)
    first = await seat.now(0)
    assert late[0] not in ours(first.rows)
    try:
        async with asyncio.timeout(1):
            second = await seat.next(first.rows[-1].id)
    except TimeoutError:
        return False
    return ours(second.rows) == late


async def test_a_ring_during_a_read_is_read_next(sign_up: Any) -> None:
    assert await late_row_is_sent(sign_up)


@pytest.mark.control
async def test_control_a_seat_that_forgets_rings_between_waits_misses_the_row(
    sign_up: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forgetful(self: Seat[Any]) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.answer.done():
            self._reads._ask(waiting, self._context)

    monkeypatch.setattr(Seat, "set", forgetful)
    assert not await late_row_is_sent(sign_up)
