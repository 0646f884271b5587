"""Hands committed commands to their actors, by command kind."""

from __future__ import annotations

import asyncio

import dramatiq

from actors.accounts import welcome_new_user
from actors.auctions import auction_drain_later
from actors.booking import drain_later
from actors.clubs import meetup_drain_later
from actors.operations import worker_queues as read_worker_queues
from actors.search import index_center
from actors.settlement import run_batch
from fitnus.accounts.service import WELCOME_COMMAND
from fitnus.commands.models import Command
from fitnus.messages import Messages, WorkerQueue

ACTOR_FOR_KIND: dict[str, dramatiq.Actor] = {  # type: ignore[type-arg]
    WELCOME_COMMAND: welcome_new_user,
}


async def index_center_later(center_id: int) -> None:
    index_center.send(center_id=center_id)


def declared_queues() -> list[str]:
    """The queues the actors were declared on (not their delayed twins)."""
    return sorted(name for name in dramatiq.get_broker().get_declared_queues()
                  if not name.endswith((".DQ", ".XQ")))


async def worker_queues(now: float) -> list[WorkerQueue]:
    # The brokers' clients block: on a thread, off the event loop.
    return await asyncio.to_thread(read_worker_queues, dramatiq.get_broker(), declared_queues(),
                                   now=now)


async def run_batch_later(run_id: int) -> None:
    run_batch.send(run_id)


async def dispatch(command: Command) -> None:
    # A blocking send on the broker's client: an RPUSH (~0.1 ms on a local
    # Redis) or a publish RabbitMQ confirms (~1 ms; actors.setup bounds a
    # blocked one), less than a hop to a thread would cost.
    ACTOR_FOR_KIND[command.kind].send(command_id=str(command.id))


MESSAGES = Messages(dispatch=dispatch, index_center=index_center_later, schedule_drain=drain_later,
                    schedule_meetup_drain=meetup_drain_later,
                    schedule_auction_drain=auction_drain_later, run_batch=run_batch_later,
                    worker_queues=worker_queues)
