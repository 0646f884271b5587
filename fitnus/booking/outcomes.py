"""What a decided booking command looks like: the command row, and the words
for each refusal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fitnus.booking import rules
from fitnus.commands.models import Command, CommandStatus

RESERVE_SEAT = "reserve_seat"
CANCEL_RESERVATION = "cancel_reservation"


@dataclass(frozen=True)
class Decided:
    command: Command
    user_id: int


REFUSAL_DETAIL = {
    rules.SOLD_OUT: "every seat is taken",
    rules.INSUFFICIENT_COUPONS: "not enough coupons for this session",
    rules.ALREADY_RESERVED: "you already hold a seat in this session",
    rules.SCHEDULE_CONFLICT: "you hold another session at that time",
    rules.TIMESLOT_CLOSED: "this session has started",
    rules.ALREADY_STARTED: "this session has started: it can no longer be cancelled",
    rules.NOT_RESERVED: "no such reservation",
}


def succeeded(
    command_id: str, user_id: int, kind: str, result: dict[str, Any], now: datetime
) -> Command:
    return Command(id=uuid.UUID(command_id), user_id=user_id, kind=kind,
                   status=CommandStatus.SUCCEEDED, result=result, created_at=now,
                   decided_at=now)


def failed(command_id: str, user_id: int, kind: str, code: str, now: datetime) -> Command:
    return Command(id=uuid.UUID(command_id), user_id=user_id, kind=kind,
                   status=CommandStatus.FAILED,
                   error={"code": code, "detail": REFUSAL_DETAIL[code]},
                   created_at=now, decided_at=now)
