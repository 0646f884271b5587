"""New rows for many event streams at once.

One event for thousands of people rings thousands of doorbells in the same
moment, and each woken stream must read its new rows: one query each would
queue thousands of queries on the connection pool. Streams woken together ask
here instead: what is asked within one turn of the event loop, or while
``queries_at_once`` queries are running, is answered by one query per
``people_per_query`` owners. An owner is whose rows they are: a person's
notifications, an auction's public events (all its watchers share one read).

A stream waits on a ``Seat``: the doorbell itself queues the seat's read, so a
ring wakes each stream once, with its rows, rather than once to ask for them
and again for the answer.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tortoise.models import Model


class Keyed(Protocol):
    """A row a stream sends: its id is the event id and the cursor."""

    @property
    def pk(self) -> Any: ...


Row = TypeVar("Row", bound=Keyed)
M = TypeVar("M", bound=Model)
# Reads rows of several owners after each one's cursor, in id order, at most ``limit``.
ReadMany = Callable[[dict[int, int], int], Awaitable[list[Row]]]

PEOPLE_PER_QUERY = 500
# Queries in flight at most; the web process's database pool holds 20 connections.
QUERIES_AT_ONCE = 4


def after_each_sql(table: str, columns: str, owner_column: str, cursors: dict[int, int],
                   limit: int, *, hint: str = "") -> str:
    """SELECT rows of several owners, each after their own cursor, in id order.

    Written as SQL: the query builder spends ~20 ms composing 500 OR terms.
    Every value is an int, formatted as one; the names are ours. ``hint``
    follows the table: given ``ORDER BY id LIMIT``, MariaDB walks the primary
    key and tests all 500 terms on every row from the lowest cursor on (50 ms
    a query at 10,000 rows) unless told to read the owners' index ranges.
    """
    after_each = " OR ".join(
        f"({owner_column} = {int(owner)} AND id > {int(after_id)})"
        for owner, after_id in cursors.items()
    )
    return (f"SELECT {columns} FROM {table} {hint} WHERE {after_each} "  # noqa: S608
            f"ORDER BY id LIMIT {int(limit)}")


async def rows_after_each(model: type[M], owner_column: str, cursors: dict[int, int],
                          limit: int) -> list[M]:
    """Rows of several owners, each after their own cursor, in id order: one query."""
    if not cursors:
        return []
    return await model.raw(after_each_sql(model._meta.db_table, "*", owner_column, cursors,
                                          limit))


@dataclass(frozen=True)
class NewRows(Generic[Row]):
    rows: list[Row]
    # True when there may be more after the last row: read again before waiting.
    more: bool


class _Asked:
    __slots__ = ("after_id", "answer", "user_id")

    def __init__(self, user_id: int, after_id: int, answer: asyncio.Future[NewRows[Any]]) -> None:
        self.user_id = user_id
        self.after_id = after_id
        self.answer = answer


class CoalescedReads(Generic[Row]):
    def __init__(
        self, read_many: ReadMany[Row], *, page: int, owner: Callable[[Row], int],
        people_per_query: int = PEOPLE_PER_QUERY, queries_at_once: int = QUERIES_AT_ONCE,
    ) -> None:
        self._read_many = read_many
        self._owner = owner
        self._page = page
        self._people_per_query = people_per_query
        self._queries_at_once = queries_at_once
        self._asked: list[_Asked] = []
        self._scheduled = False
        self._querying: set[asyncio.Task[None]] = set()

    async def after(self, user_id: int, after_id: int) -> NewRows[Row]:
        """This owner's rows after ``after_id``, at most a page, in id order."""
        return await self._ask(_Asked(user_id, after_id,
                                      asyncio.get_running_loop().create_future()))

    def seat(self, owner: int) -> Seat[Row]:
        """A place for one stream of ``owner``'s rows; watch it on the owner's doorbell."""
        return Seat(self, owner)

    def _ask(self, asked: _Asked,
             context: contextvars.Context | None = None) -> asyncio.Future[NewRows[Any]]:
        self._asked.append(asked)
        self._schedule(context)
        return asked.answer

    def _schedule(self, context: contextvars.Context | None = None) -> None:
        # While every query slot is busy, asks gather for the next query: the
        # busier the database, the bigger the batches. The queries run in the
        # context of the one who asked (its database, its request id).
        if self._asked and not self._scheduled and len(self._querying) < self._queries_at_once:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, context=context)

    def _flush(self) -> None:
        # One pass: each group takes the next askers up to ``people_per_query``
        # people (a person's later asks join the group they are already in);
        # what the free query slots cannot take waits for the next.
        self._scheduled = False
        free = self._queries_at_once - len(self._querying)
        asked, self._asked = self._asked, []
        groups: list[dict[int, list[_Asked]]] = []
        group_of: dict[int, dict[int, list[_Asked]]] = {}
        group: dict[int, list[_Asked]] = defaultdict(list)
        for index, one in enumerate(asked):
            if one.answer.done():
                continue  # its stream has gone
            placed = group_of.get(one.user_id)
            if placed is not None:
                placed[one.user_id].append(one)
                continue
            if len(group) == self._people_per_query:
                groups.append(group)
                if len(groups) == free:
                    self._asked = asked[index:]
                    break
                group = defaultdict(list)
            group[one.user_id].append(one)
            group_of[one.user_id] = group
        else:
            if group:
                groups.append(group)
        for each in groups:
            task = asyncio.ensure_future(self._answer(each))
            self._querying.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._querying.discard(task)
        self._schedule()

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
        rows_of: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            rows_of[self._owner(row)].append(row)
        for person, asked in group.items():
            for one in asked:
                mine = [row for row in rows_of[person] if row.pk > one.after_id]
                answer = NewRows(mine[:self._page], cut or len(mine) >= self._page)
                if not one.answer.done():
                    one.answer.set_result(answer)


class Seat(Generic[Row]):
    """One stream's place at the reads, rung by its owner's doorbell (``set``).

    A ring while the stream waits in ``next`` queues its read at once; a ring
    at any other moment (while a read is in flight, or rows are being
    written) is remembered, so ``next`` reads again without waiting: a row
    committed after a read's snapshot is never left behind.
    """

    def __init__(self, reads: CoalescedReads[Row], owner: int) -> None:
        self._reads = reads
        self.owner = owner
        # A ring comes from the doorbell's listener, outside any request: the
        # read it starts runs in the stream's own context.
        self._context = contextvars.copy_context()
        self._rung = False
        self._waiting: _Asked | None = None

    def set(self) -> None:
        """The owner's doorbell rang (the name is ``asyncio.Event``'s, as doorbells call it)."""
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            self._rung = True
        elif not waiting.answer.done():
            self._reads._ask(waiting, self._context)

    async def now(self, after_id: int) -> NewRows[Row]:
        """The owner's rows after ``after_id``, read now."""
        self._rung = False
        return await self._reads.after(self.owner, after_id)

    async def next(self, after_id: int) -> NewRows[Row]:
        """The owner's rows after ``after_id`` once the doorbell rings (or has rung)."""
        asked = _Asked(self.owner, after_id, asyncio.get_running_loop().create_future())
        if self._rung:
            self._rung = False
            self._reads._ask(asked)
        else:
            self._waiting = asked
        try:
            return await asked.answer
        finally:
            self._waiting = None
