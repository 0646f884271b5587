"""Commands: a status record per asynchronous request, decided exactly once.

A command row is written in the same transaction as the state change that
asks for it, and dispatched to a worker after the commit. Deciding is a
conditional UPDATE from ``pending``, so an actor that runs twice decides once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.pending import PendingCommands
from fitnus.errors import NotFound

# Hands a committed command to the workers (a dramatiq message in production).
Dispatch = Callable[[Command], Awaitable[None]]

# Per redrive run; the next run takes the rest.
STALE_BATCH = 1000


async def open_command(*, user_id: int, kind: str, now: datetime) -> Command:
    return await Command.create(
        id=uuid.uuid4(), user_id=user_id, kind=kind, status=CommandStatus.PENDING, created_at=now
    )


async def decide_command(
    command_id: uuid.UUID,
    *,
    now: datetime,
    result: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
) -> bool:
    """Record the outcome unless one is recorded already; True if this call decided."""
    status = CommandStatus.FAILED if error is not None else CommandStatus.SUCCEEDED
    updated = await Command.filter(id=command_id, status=CommandStatus.PENDING).update(
        status=status, result=result, error=error, decided_at=now
    )
    return updated == 1


async def command_of(
    *, user_id: int, command_id: uuid.UUID, pending: PendingCommands | None = None
) -> Command:
    """A command, to its sender only: anyone else gets the same 404 as for no command.

    Decided commands are rows; commands still in a keyed queue may exist only
    in ``pending``.
    """
    command = await Command.get_or_none(id=command_id, user_id=user_id)
    if command is None and pending is not None:
        command = await pending.find(command_id)
        if command is not None and command.user_id != user_id:  # type: ignore[attr-defined]
            command = None
    if command is None:
        raise NotFound("no such command", code="command_not_found")
    return command


async def stale_pending_commands(
    *, kinds: Collection[str], now: datetime, older_than: timedelta
) -> list[Command]:
    return await Command.filter(
        kind__in=list(kinds), status=CommandStatus.PENDING, created_at__lt=now - older_than
    ).order_by("created_at").limit(STALE_BATCH)


def command_view(command: Command) -> dict[str, Any]:
    view: dict[str, Any] = {
        "command_id": str(command.id),
        "kind": command.kind,
        "status": command.status.value,
    }
    if command.result is not None:
        view["result"] = command.result
    if command.error is not None:
        view["error"] = command.error
    return view
