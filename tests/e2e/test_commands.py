"""The command mechanism end to end: signup → welcome command → real worker →
outcome over Redis pub/sub → `Prefer: wait`."""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.clock import system_clock
from fitnus.commands.models import Command, CommandStatus
from fitnus.commands.service import open_command
from fitnus.notifications.models import Notification
from fitnus.notifications.service import send_welcome

Client = TestClient[Any, Any]


@pytest.mark.portable
async def test_signup_welcome_is_decided_by_a_worker_and_awaited_with_prefer_wait(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    account = await sign_up()
    response = await client.get(
        f"/api/v1/commands/{account.welcome_command_id}",
        headers={**account.headers, "Prefer": "wait=8"},
    )
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "succeeded", body
    assert body["kind"] == "send_welcome"
    notification = await Notification.get(id=body["result"]["notification_id"])
    assert notification.user_id == account.id  # type: ignore[attr-defined]
    assert notification.type == "account.welcome"


async def test_prefer_wait_answers_pending_when_nothing_decides_in_time(
    client: Client, sign_up: Any
) -> None:
    account = await sign_up()
    orphan = await open_command(user_id=account.id, kind="nobody_handles_this",
                                now=system_clock.now())
    response = await client.get(
        f"/api/v1/commands/{orphan.id}", headers={**account.headers, "Prefer": "wait=1"}
    )
    assert (await response.json())["status"] == "pending"


async def test_a_command_is_visible_only_to_its_sender(client: Client, sign_up: Any) -> None:
    sender, other = await sign_up(), await sign_up()
    path = f"/api/v1/commands/{sender.welcome_command_id}"
    assert (await client.get(path, headers=sender.headers)).status == 200
    response = await client.get(path, headers=other.headers)
    assert response.status == 404
    assert (await response.json())["code"] == "command_not_found"
    assert (await client.get(path)).status == 401


@pytest.mark.parametrize("command_id", ["not-a-uuid", "1", str(uuid.uuid4())])
async def test_malformed_or_unknown_command_ids_are_404(
    client: Client, sign_up: Any, command_id: str
) -> None:
    account = await sign_up()
    response = await client.get(f"/api/v1/commands/{command_id}", headers=account.headers)
    assert response.status == 404


async def test_running_the_welcome_twice_has_one_effect(sign_up: Any) -> None:
    account = await sign_up()
    command_id = uuid.UUID(account.welcome_command_id)
    first = await send_welcome(command_id=command_id, clock=system_clock)
    second = await send_welcome(command_id=command_id, clock=system_clock)
    assert first is not None
    assert second is not None
    assert first.status is second.status is CommandStatus.SUCCEEDED
    assert first.decided_at == second.decided_at
    assert first.result == second.result
    assert await Notification.filter(user_id=account.id).count() == 1


async def test_a_duplicate_message_delivered_to_the_worker_changes_nothing(
    sign_up: Any, worker: dramatiq.Worker, broker: dramatiq.Broker
) -> None:
    from actors.accounts import welcome_new_user
    from tests.conftest import eventually

    account = await sign_up()

    async def decided() -> bool:
        command = await Command.get(id=account.welcome_command_id)
        return command.status is not CommandStatus.PENDING

    await eventually(decided)
    before = await Command.get(id=account.welcome_command_id)
    welcome_new_user.send(command_id=account.welcome_command_id)
    welcome_new_user.send(command_id=account.welcome_command_id)
    broker.join(welcome_new_user.queue_name, timeout=10_000)
    worker.join()
    after = await Command.get(id=account.welcome_command_id)
    assert (after.status, after.decided_at, after.result) == (
        before.status, before.decided_at, before.result
    )
    assert await Notification.filter(user_id=account.id).count() == 1


async def test_prefer_header_parsing() -> None:
    from web.commands import preferred_wait_seconds

    assert preferred_wait_seconds(None) == 0
    assert preferred_wait_seconds("wait=3") == 3
    assert preferred_wait_seconds("respond-async, wait=2.5") == 2.5
    assert preferred_wait_seconds("wait=600") == 10
    assert preferred_wait_seconds("handling=lenient") == 0
