from __future__ import annotations

from datetime import timedelta

import dramatiq

from actors.dispatch import ACTOR_FOR_KIND, dispatch
from actors.runtime import runtime
from fitnus.commands.service import stale_pending_commands


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def redrive_pending_commands() -> None:
    """Send again what a web process committed but died before sending.

    Actors are idempotent, so a command sent twice is decided once.
    """
    rt = runtime()
    older_than = timedelta(seconds=rt.settings.command_redrive_after_seconds)
    stale = await stale_pending_commands(
        kinds=ACTOR_FOR_KIND.keys(), now=rt.clock.now(), older_than=older_than
    )
    for command in stale:
        await dispatch(command)
