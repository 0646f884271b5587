from __future__ import annotations

import uuid

import dramatiq

from actors.runtime import runtime
from fitnus.accounts.service import prune_refresh_tokens
from fitnus.commands.outcomes import publish_outcomes
from fitnus.notifications.service import ring, send_welcome


@dramatiq.actor(queue_name="accounts", max_retries=10, min_backoff=500, max_backoff=30_000)
async def welcome_new_user(*, command_id: str) -> None:
    rt = runtime()
    command = await send_welcome(command_id=uuid.UUID(command_id), clock=rt.clock)
    if command is not None:
        await publish_outcomes(rt.redis, rt.keys, [command])
        await ring(rt.redis, rt.keys, [command.user_id])  # type: ignore[attr-defined]


@dramatiq.actor(queue_name="accounts", max_retries=3)
async def prune_expired_refresh_tokens() -> None:
    await prune_refresh_tokens(now=runtime().clock.now())
