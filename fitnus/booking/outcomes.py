"""What a decided booking command looks like: the command row, the person's
notification, and the words for each refusal."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fitnus.booking import rules
from fitnus.clock import Clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.keyed_queue import GiveUp, QueuedItem
from fitnus.notifications.models import Notification
from fitnus.notifications.order import take_turn

RESERVE_SEAT = "reserve_seat"
CANCEL_RESERVATION = "cancel_reservation"
MOVE_RESERVATION = "move_reservation"
# Not a person's command: the owner took the timeslot off (or closed the center).
WITHDRAW_TIMESLOT = "withdraw_timeslot"


@dataclass(frozen=True)
class Decided:
    command: Command
    user_id: int


@dataclass
class Decisions:
    """What part of a batch decided: command outcomes, the people who got a
    notification, and other timeslots where a seat was freed (a move's old one)."""

    outcomes: list[Decided] = field(default_factory=list)
    notified: set[int] = field(default_factory=set)
    freed: set[int] = field(default_factory=set)

    def add(self, other: Decisions) -> None:
        self.outcomes += other.outcomes
        self.notified |= other.notified
        self.freed |= other.freed


@dataclass(frozen=True)
class DecidedBatch:
    """What one committed batch decided; whether its key is full after it."""

    decided: Decisions
    full: bool


def event(user_id: int, type: str, payload: dict[str, Any], *, dedupe: str,
          now: datetime) -> Notification:
    """A notification row, once per ``type`` and ``dedupe`` for the person."""
    return Notification(user_id=user_id, type=type, payload=payload,
                        dedupe_key=f"{type}:{dedupe}", created_at=now)


async def record(commands: list[Command], notifications: list[Notification]) -> Decisions:
    """Write a run's command rows and notifications, a statement each."""
    if commands:
        await Command.bulk_create(commands)
    if notifications:
        await take_turn(notification.user_id  # type: ignore[attr-defined]
                        for notification in notifications)
        await Notification.bulk_create(notifications)
    return Decisions(
        outcomes=[Decided(command, command.user_id)  # type: ignore[attr-defined]
                  for command in commands],
        notified={notification.user_id  # type: ignore[attr-defined]
                  for notification in notifications},
    )


REFUSAL_DETAIL = {
    rules.SOLD_OUT: "every seat is taken",
    rules.INSUFFICIENT_COUPONS: "not enough coupons for this session",
    rules.ALREADY_RESERVED: "you already hold a seat in this session",
    rules.SCHEDULE_CONFLICT: "you hold another session at that time",
    rules.TIMESLOT_CLOSED: "this session has started",
    rules.ALREADY_STARTED: "this session has started: it can no longer be cancelled",
    rules.NOT_RESERVED: "no such reservation",
    rules.MOVE_WINDOW_CLOSED: "a booking can be moved until 24 h before its start",
}


# An item set aside undecided (fitnus.keyed_queue.drain): nothing it asked for was done.
NOT_DECIDED = "not_decided"
REFUSAL_DETAIL[NOT_DECIDED] = ("this request could not be decided: nothing was changed, "
                               "and it may be sent again")


def giving_up(published: Callable[[Decisions], Awaitable[None]], clock: Clock) -> GiveUp:
    """A drain's ``give_up``: a person's command fails as not decided, and
    whoever waits for it hears so. The service's own requests have no one
    waiting. A command decided already keeps its outcome."""
    async def give_up(item: QueuedItem) -> None:
        if "user_id" not in item.payload:
            return
        command_id = item.payload["command_id"]
        await Command.bulk_create([failed(command_id, item.payload["user_id"],
                                          item.payload["kind"], NOT_DECIDED, clock.now())],
                                  ignore_conflicts=True)
        command = await Command.get(id=command_id)
        await published(Decisions(outcomes=[Decided(command, command.user_id)]))  # type: ignore[attr-defined]

    return give_up


def succeeded(
    command_id: str, user_id: int, kind: str, result: dict[str, Any], now: datetime
) -> Command:
    return Command(id=uuid.UUID(command_id), user_id=user_id, kind=kind,
                   status=CommandStatus.SUCCEEDED, result=result, created_at=now,
                   decided_at=now)


def failed(command_id: str, user_id: int, kind: str, code: str, now: datetime, *,
           detail: str | None = None) -> Command:
    return Command(id=uuid.UUID(command_id), user_id=user_id, kind=kind,
                   status=CommandStatus.FAILED,
                   error={"code": code, "detail": detail or REFUSAL_DETAIL[code]},
                   created_at=now, decided_at=now)


async def split_decided(items: Sequence[QueuedItem]) -> tuple[Decisions, list[QueuedItem]]:
    """Commands of a batch decided already (a drainer committed and died, or
    lost its lease, before acknowledging), to announce again, and the items
    still to decide."""
    decided_already = await Command.filter(id__in=[item.payload["command_id"] for item in items])
    known = {str(command.id) for command in decided_already}
    return Decisions(
        outcomes=[Decided(command, command.user_id)  # type: ignore[attr-defined]
                  for command in decided_already],
        notified={command.user_id for command in decided_already},  # type: ignore[attr-defined]
    ), [item for item in items if item.payload["command_id"] not in known]
