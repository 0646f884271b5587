"""Operators see the queues and redrive one a worker left behind."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, get_args

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from actors.operations import dead_letters, requeue_dead_letters
from fitnus.booking.models import Reservation
from fitnus.booking.outcomes import RESERVE_SEAT
from fitnus.booking.service import timeslot_queue
from fitnus.clock import system_clock
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import CommandQueue
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.operations import KEYED_KINDS
from tests.conftest import eventually
from tests.e2e.test_booking import PRICE, fund, open_session
from tests.e2e.test_centers import admin_headers
from web.operations import QueuePath

pytestmark = pytest.mark.cluster

Client = TestClient[Any, Any]


async def nobody_drains(key: int) -> None:
    """A web process that queued the request and died before sending its drain."""


async def test_a_queue_its_worker_left_shows_its_age_and_a_redrive_empties_it(
    client: Client, sign_up: Any, settings: Settings, redis: Redis, worker: dramatiq.Worker,
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    keys = Keys(settings.redis_key_prefix)
    left_behind = CommandQueue(redis=redis, keys=keys, queue=timeslot_queue(redis, keys),
                               pending=PendingCommands(redis=redis, keys=keys),
                               clock=system_clock, schedule_drain=nobody_drains)
    people = [await sign_up() for _ in range(3)]
    for person in people:
        await fund(person.id, PRICE)
        await left_behind.send(session.timeslot_id, kind=RESERVE_SEAT, user_id=person.id,
                               stamped=False)
    await asyncio.sleep(0.3)
    admin = await admin_headers(client, settings)

    async def ours() -> dict[str, Any] | None:
        shown = await client.get("/api/v1/admin/queues", headers=admin)
        assert shown.status == 200, await shown.text()
        body = await shown.json()
        assert {queue["queue"] for queue in body["dramatiq"]} >= {"maintenance", "booking"}
        assert isinstance(body["pending_commands"], int)
        return next((queue for queue in body["keyed"] if queue["kind"] == "timeslot"
                     and queue["key"] == str(session.timeslot_id)), None)

    stuck = await ours()
    assert stuck is not None
    assert (stuck["depth"], stuck["lease_token"]) == (3, None)
    assert stuck["oldest_age_s"] >= 0.3
    assert await Reservation.filter(timeslot_id=session.timeslot_id).count() == 0

    redrive = f"/api/v1/admin/queues/timeslot/{session.timeslot_id}/redrive"
    assert (await client.post(redrive, headers=people[0].headers)).status == 403
    for unknown in ("nonsense/1", "timeslot/0", "timeslot/x"):
        assert (await client.post(f"/api/v1/admin/queues/{unknown}/redrive",
                                  headers=admin)).status == 404, unknown
    answer = await client.post(redrive, headers=admin)
    assert (answer.status, (await answer.json())["depth"]) == (202, 3)

    async def drained() -> bool:
        return await ours() is None

    await eventually(drained)
    assert await Reservation.filter(timeslot_id=session.timeslot_id, active=True).count() == 3
    assert (await client.get("/api/v1/admin/queues", headers=people[0].headers)).status == 403


def test_the_api_names_every_kind_of_keyed_queue() -> None:
    assert get_args(QueuePath.model_fields["kind"].annotation) == KEYED_KINDS


async def test_a_dead_letter_is_listed_and_sent_back_to_its_queue(
    broker: dramatiq.Broker, worker: dramatiq.Worker,
) -> None:
    """On either broker (Redis here, RabbitMQ in the cluster pass): a message
    the worker gives up on (no actor of that name) shows as a dead letter, and
    a requeue puts that same message back through its queue, so the worker
    dead-letters it again, once."""
    queue = f"dead-letter-test-{uuid.uuid4().hex[:6]}"
    broker.declare_queue(queue)
    sent = broker.enqueue(dramatiq.Message(queue_name=queue, actor_name="gone",
                                           args=(), kwargs={}, options={}))
    letters: list[Any] = []

    async def dead_since(moment_ms: int) -> bool:
        letters[:] = await asyncio.to_thread(dead_letters, broker, [queue])
        return any(letter.died_at_ms > moment_ms for letter in letters)

    await eventually(lambda: dead_since(0))
    [letter] = letters
    assert (letter.queue, letter.message_id, letter.actor) == (queue, sent.message_id, "gone")
    # Looking takes nothing away, and RabbitMQ stamps its deaths to the second.
    await asyncio.sleep(1.1)
    assert await asyncio.to_thread(dead_letters, broker, [queue]) == [letter]
    assert await asyncio.to_thread(requeue_dead_letters, broker, [queue]) == 1
    await eventually(lambda: dead_since(letter.died_at_ms))
    [again] = letters
    assert again.message_id == sent.message_id
