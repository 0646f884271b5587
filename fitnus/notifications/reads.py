"""New rows for many event streams at once.

One event for thousands of people rings thousands of doorbells in the same
moment, and each woken stream must read its new rows: one query each would
queue thousands of queries on the connection pool. Streams woken together ask
here instead; the requests made within one turn of the event loop are
answered by one query per ``people_per_query`` people.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fitnus.notifications.models import Notification

# Reads rows of several people after each one's cursor, in id order, at most ``limit``.
ReadMany = Callable[[dict[int, int], int], Awaitable[list[Notification]]]

PEOPLE_PER_QUERY = 500


@dataclass(frozen=True)
class NewRows:
    rows: list[Notification]
    # True when there may be more after the last row: read again before waiting.
    more: bool


@dataclass
class _Asked:
    user_id: int
    after_id: int
    answer: asyncio.Future[NewRows] = field(repr=False)


class CoalescedReads:
    def __init__(
        self, read_many: ReadMany, *, page: int, people_per_query: int = PEOPLE_PER_QUERY
    ) -> None:
        self._read_many = read_many
        self._page = page
        self._people_per_query = people_per_query
        self._asked: list[_Asked] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def after(self, user_id: int, after_id: int) -> NewRows:
        """This person's rows after ``after_id``, at most a page, in id order."""
        loop = asyncio.get_running_loop()
        if not self._asked:
            loop.call_soon(self._flush)
        asked = _Asked(user_id, after_id, loop.create_future())
        self._asked.append(asked)
        return await asked.answer

    def _flush(self) -> None:
        asked, self._asked = self._asked, []
        by_person: dict[int, list[_Asked]] = defaultdict(list)
        for one in asked:
            by_person[one.user_id].append(one)
        people = list(by_person)
        for start in range(0, len(people), self._people_per_query):
            group = {person: by_person[person] for person in
                     people[start:start + self._people_per_query]}
            task = asyncio.ensure_future(self._answer(group))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _answer(self, group: dict[int, list[_Asked]]) -> None:
        # A person may have several streams at different cursors: read from the lowest.
        cursors = {person: min(one.after_id for one in asked) for person, asked in group.items()}
        limit = self._page * len(group)
        try:
            rows = await self._read_many(cursors, limit)
        except Exception as exc:  # handed to every stream that asked
            for asked in group.values():
                for one in asked:
                    if not one.answer.done():
                        one.answer.set_exception(exc)
            return
        # Rows come in id order, so a cut at ``limit`` leaves each person a
        # prefix of their rows: correct to send, but maybe not all of them.
        cut = len(rows) == limit
        rows_of: dict[int, list[Notification]] = defaultdict(list)
        for row in rows:
            rows_of[row.user_id].append(row)  # type: ignore[attr-defined]
        for person, asked in group.items():
            for one in asked:
                mine = [row for row in rows_of[person] if row.id > one.after_id]
                answer = NewRows(mine[:self._page], cut or len(mine) >= self._page)
                if not one.answer.done():
                    one.answer.set_result(answer)
