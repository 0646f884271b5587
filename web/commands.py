from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from fitnus.accounts.tokens import Principal
from fitnus.commands.models import CommandStatus
from fitnus.commands.queued import Queued
from fitnus.commands.service import command_of, command_view
from fitnus.errors import FitnusError
from web.keys import OUTCOMES, PENDING
from web.routing import Api
from web.schemas import json

api = Api()

MAX_WAIT_SECONDS = 10.0
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+(?:\.\d+)?)")


def preferred_wait_seconds(prefer: str | None) -> float:
    """``Prefer: wait=N`` (RFC 7240), capped at MAX_WAIT_SECONDS; 0 when absent."""
    match = _PREFER_WAIT.search(prefer or "")
    return min(float(match.group(1)), MAX_WAIT_SECONDS) if match else 0.0


class ReservationAccepted(BaseModel):
    """A command accepted into a keyed queue (a booking, a join, a claim)."""

    command_id: str
    status: Literal["pending"] = "pending"
    position: int


class CommandAccepted(BaseModel):
    command_id: str
    status: Literal["pending"] = "pending"


def accepted(queued: Queued) -> web.Response:
    return json(ReservationAccepted(command_id=str(queued.command_id),
                                    position=queued.position), 202)


async def result_within(app: web.Application, principal: Principal, queued: Queued, *,
                        prefer: str | None, refused: type[FitnusError]) -> dict[str, Any] | None:
    """With ``Prefer: wait=N``: the command's result once it succeeded within
    N seconds, or its refusal raised as ``refused``. None while it is pending."""
    wait_seconds = preferred_wait_seconds(prefer)
    if wait_seconds <= 0:
        return None
    command = await app[OUTCOMES].wait(user_id=principal.user_id, command_id=queued.command_id,
                                       timeout_seconds=wait_seconds)
    if command.status is CommandStatus.FAILED:
        assert command.error is not None
        raise refused(command.error["detail"], code=command.error["code"])
    return command.result if command.status is CommandStatus.SUCCEEDED else None


async def decided_within(app: web.Application, principal: Principal, queued: Queued, *,
                         timeout_seconds: float, refused: type[FitnusError]) -> web.Response:
    """204 once the command succeeded within the timeout, its refusal raised
    as ``refused``, or 202 while it is still in line."""
    command = await app[OUTCOMES].wait(user_id=principal.user_id, command_id=queued.command_id,
                                       timeout_seconds=timeout_seconds)
    if command.status is CommandStatus.SUCCEEDED:
        return web.Response(status=204)
    if command.status is CommandStatus.FAILED:
        assert command.error is not None
        raise refused(command.error["detail"], code=command.error["code"])
    return json(CommandAccepted(command_id=str(command.id)), 202)


class CommandPath(BaseModel):
    command_id: uuid.UUID


class PreferHeader(BaseModel):
    prefer: str | None = Field(
        default=None, alias="Prefer", max_length=200,
        description="wait=N (N ≤ 10): answer once the command is decided, or after N seconds",
    )


class CommandError(BaseModel):
    code: str
    detail: str


class CommandOut(BaseModel):
    command_id: str
    kind: str
    status: Literal["pending", "succeeded", "failed"]
    result: dict[str, Any] | None = None
    error: CommandError | None = None


@api.route(
    "GET", "/api/v1/commands/{command_id}", tag="commands",
    summary="The status of a command you sent; Prefer: wait=N waits for its outcome",
    path_params=CommandPath, headers=PreferHeader, auth=True,
    responses={200: CommandOut}, errors=(401, 404),
)
async def get_command(
    request: web.Request, *, path: CommandPath, headers: PreferHeader, principal: Principal
) -> web.Response:
    wait_seconds = preferred_wait_seconds(headers.prefer)
    if wait_seconds > 0:
        command = await request.app[OUTCOMES].wait(
            user_id=principal.user_id, command_id=path.command_id, timeout_seconds=wait_seconds
        )
    else:
        command = await command_of(
            user_id=principal.user_id, command_id=path.command_id, pending=request.app[PENDING]
        )
    return json(CommandOut.model_validate(command_view(command)), exclude_none=True)
