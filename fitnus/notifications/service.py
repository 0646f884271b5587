"""Notifications: rows first, delivery after."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise.transactions import in_transaction

from fitnus.clock import Clock
from fitnus.commands.models import Command
from fitnus.commands.service import decide_command
from fitnus.notifications.models import Notification

WELCOME = "account.welcome"


async def notify(
    *, user_id: int, type: str, payload: dict[str, Any], dedupe_key: str, clock: Clock
) -> Notification:
    """Store a notification once per (user, dedupe_key); a repeat returns the first row."""
    notification, _ = await Notification.get_or_create(
        user_id=user_id,
        dedupe_key=dedupe_key,
        defaults={"type": type, "payload": payload, "created_at": clock.now()},
    )
    return notification


async def send_welcome(*, command_id: uuid.UUID, clock: Clock) -> Command | None:
    """Decide a welcome command: one notification row, one outcome, however often run.

    Returns the command as decided, or None when it does not exist.
    """
    command = await Command.get_or_none(id=command_id).select_related("user")
    if command is None:
        return None
    async with in_transaction():
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
