"""What a decided booking command looks like: the command row, the person's
notification, and the words for each refusal."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from fitnus.booking import rules
from fitnus.booking.guards import Fenced, advance_fence
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


def giving_up(published: Callable[[Decisions], Awaitable[None]], clock: Clock, *,
              fenced_by: type[Model], key: int) -> GiveUp:
    """A drain's ``give_up`` for the queue of ``key``, whose row of
    ``fenced_by`` carries its fencing token: a person's command fails as not
    decided, and whoever waits for it hears so. The service's own requests,
    and one too garbled to name its sender, have no one to tell. A command
    decided already keeps its outcome."""
    async def give_up(item: QueuedItem, token: int) -> None:
        sender = _sender(item)
        async with in_transaction():
            row = await fenced_by.select_for_update().get_or_none(id=key)
            if row is not None:
                await advance_fence(fenced_by, cast(Fenced, row), token)
            if sender is None:
                return
            command_id, user_id = sender
            try:
                async with in_transaction():
                    # A seat request is queued unstamped: the crowd's path.
                    await failed(str(command_id), user_id,
                                 str(item.payload.get("kind", RESERVE_SEAT)), NOT_DECIDED,
                                 clock.now()).save(force_create=True)
            except IntegrityError:
                pass  # decided already, or its sender has gone
            command = await Command.get_or_none(id=command_id)
        if command is not None:
            await published(Decisions(outcomes=[Decided(command, user_id)]))

    return give_up


def _sender(item: QueuedItem) -> tuple[uuid.UUID, int] | None:
    try:
        return uuid.UUID(str(item.payload["command_id"])), int(item.payload["user_id"])
    except (KeyError, TypeError, ValueError):
        return None


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
