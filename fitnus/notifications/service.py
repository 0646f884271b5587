"""Notifications: rows first, delivery after."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fitnus.clock import Clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.service import decide_command
from fitnus.db import force_index
from fitnus.errors import NotFound
from fitnus.keys import Keys
from fitnus.notifications.models import BY_PERSON, Notification
from fitnus.notifications.order import take_turn
from fitnus.notifications.reads import after_each_sql
from fitnus.pubsub import ring_many
from fitnus.redis_client import RedisClient

WELCOME = "account.welcome"


async def notify(
    *, user_id: int, type: str, payload: dict[str, Any], dedupe_key: str, clock: Clock
) -> Notification:
    """Store a notification once per (user, dedupe_key); a repeat returns the first row.

    The insert runs in a savepoint so a duplicate leaves the caller's
    transaction usable; a concurrent sender of the same key waits on the
    unique index, and the locking read then sees the row the winner
    committed, which a plain read in this transaction's snapshot would not.
    """
    try:
        async with in_transaction():
            await take_turn([user_id])
            return await Notification.create(
                user_id=user_id, dedupe_key=dedupe_key, type=type, payload=payload,
                created_at=clock.now(),
            )
    except IntegrityError:
        return await Notification.select_for_update().get(user_id=user_id, dedupe_key=dedupe_key)


async def send_welcome(*, command_id: uuid.UUID, clock: Clock) -> Command | None:
    """Decide a welcome command: one notification row, one outcome, however often run.

    Returns the command as decided, or None when it does not exist.
    """
    async with in_transaction():
        # The row lock serializes duplicate deliveries of this command: the
        # second one waits, then finds it decided.
        command = await Command.select_for_update().get_or_none(id=command_id)
        if command is None or command.status is not CommandStatus.PENDING:
            return command
        await command.fetch_related("user")
        notification = await notify(
            user_id=command.user.id,
            type=WELCOME,
            payload={"name": command.user.name},
            dedupe_key=f"welcome:{command.user.id}",
            clock=clock,
        )
        await decide_command(
            command.id, now=clock.now(), result={"notification_id": notification.id}
        )
        await command.refresh_from_db()
    return command


NOTIFICATION_PAGE = 500


async def notifications_after(user_id: int, *, after_id: int, limit: int) -> list[Notification]:
    return await Notification.filter(user_id=user_id, id__gt=after_id).order_by("id").limit(
        limit
    )


class StoredNotification(NamedTuple):
    """A notification as its event stream sends it: read without building a
    model (10,000 of them cost the fan-out half a second), its payload the
    JSON text as stored."""

    id: int
    user_id: int
    type: str
    payload_json: str

    @property
    def pk(self) -> int:
        return self.id


async def notifications_after_each(
    cursors: dict[int, int], limit: int
) -> list[StoredNotification]:
    """Rows of several people, each after their own cursor, in id order: one query."""
    if not cursors:
        return []
    db = Notification._meta.db
    rows = await db.execute_query_dict(after_each_sql(
        Notification._meta.db_table, "id, user_id, type, payload", "user_id", cursors, limit,
        hint=force_index(db.capabilities.dialect, BY_PERSON)))
    return [StoredNotification(row["id"], row["user_id"], row["type"], row["payload"])
            for row in rows]


async def latest_notification_id(user_id: int) -> int:
    """The id of a person's newest event, 0 before their first: where a new
    screen starts its stream when it needs nothing that came before."""
    newest = await Notification.filter(user_id=user_id).order_by("-id").first()
    return 0 if newest is None else newest.id


def notification_owner(row: StoredNotification) -> int:
    return row.user_id


async def mark_read(*, user_id: int, notification_id: int, now: datetime) -> None:
    """Its user only; anyone else gets the same 404 as for no notification."""
    if not await Notification.exists(id=notification_id, user_id=user_id):
        raise NotFound("no such notification", code="notification_not_found")
    await Notification.filter(id=notification_id, read_at=None).update(read_at=now)


async def ring(redis: RedisClient, keys: Keys, user_ids: Iterable[int]) -> None:
    """After a commit: tell each person's open streams to read their new rows."""
    await ring_many(redis, keys.user_channel(""), {str(user_id) for user_id in user_ids})
