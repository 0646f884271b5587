from __future__ import annotations

from datetime import timedelta

import dramatiq

from actors.dispatch import dispatch
from actors.runtime import runtime
from fitnus.commands.service import stale_pending_commands


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def redrive_pending_commands() -> None:
    """Send again what a web process committed but died before sending.

    Actors are idempotent, so a command sent twice is decided once.
    """
    rt = runtime()
    older_than = timedelta(seconds=rt.settings.command_redrive_after_seconds)
    for command in await stale_pending_commands(now=rt.clock.now(), older_than=older_than):
        await dispatch(command)
