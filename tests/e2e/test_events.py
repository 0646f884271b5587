"""Notifications and the SSE stream: replay, live, tickets, any instance."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from fitnus.clock import system_clock
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.notifications.service import WELCOME, notify, ring
from tests.conftest import eventually
from web.keys import STREAMS
from web.streams import OpenStreams

pytestmark = pytest.mark.cluster

Client = TestClient[Any, Any]
READ_DEADLINE_SECONDS = 30  # a deadline for failures only: reads end as soon as events arrive


async def read_events(response: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of an open stream (comments skipped)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    async def read() -> None:
        while len(events) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith(":") or line.startswith("retry:"):
                continue
            if not line:
                if current:
                    events.append(dict(current))
                    current.clear()
                continue
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value

    await asyncio.wait_for(read(), READ_DEADLINE_SECONDS)
    return events


async def read_test_events(response: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events pushed by the test itself, skipping others
    (a welcome notification written by a worker may interleave)."""
    ours: list[dict[str, Any]] = []
    while len(ours) < count:
        ours += [e for e in await read_events(response, 1) if e["event"] == "test.event"]
    return ours


async def push(redis: Redis, settings: Settings, user_id: int, n: int) -> int:
    row = await notify(user_id=user_id, type="test.event", payload={"n": n},
                       dedupe_key=f"test:{n}", clock=system_clock)
    await ring(redis, Keys(settings.redis_key_prefix), [user_id])
    return row.id


@pytest.mark.portable
async def test_the_stream_replays_then_goes_live_without_gap_or_duplicate(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    user = await sign_up()
    ids = [await push(redis, settings, user.id, n) for n in range(5)]
    response = await client.get("/api/v1/events",
                                headers={**user.headers, "Last-Event-ID": str(ids[1])})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    # A welcome written by a worker may interleave: compare this test's events.
    replayed = await read_test_events(response, 3)
    assert [int(event["id"]) for event in replayed] == ids[2:]
    live_id = await push(redis, settings, user.id, 99)
    [live] = await read_test_events(response, 1)
    assert (int(live["id"]), live["event"], live["data"]["n"]) == (live_id, "test.event", 99)
    response.close()


async def test_a_reconnect_gets_exactly_what_it_missed(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    user = await sign_up()
    first = await client.get("/api/v1/events", headers=user.headers)
    before_disconnect = await push(redis, settings, user.id, 0)
    # Whatever else arrives first (the welcome, written by a worker), read up
    # to the event pushed before disconnecting.
    seen = await read_events(first, 1)
    while int(seen[-1]["id"]) != before_disconnect:
        seen += await read_events(first, 1)
    first.close()
    missed = [await push(redis, settings, user.id, n) for n in (1, 2, 3)]
    again = await client.get("/api/v1/events",
                             headers={**user.headers, "Last-Event-ID": seen[-1]["id"]})
    live = await push(redis, settings, user.id, 4)
    # Only this test's events: a welcome written late by a worker may sit between.
    ours = await read_test_events(again, 4)
    assert [int(event["id"]) for event in ours] == [*missed, live]
    again.close()


async def test_a_ticket_works_once(client: Client, sign_up: Any) -> None:
    user = await sign_up()
    ticket = await (await client.post("/api/v1/events/tickets", headers=user.headers)).json()
    assert ticket["expires_in"] > 0
    response = await client.get(f"/api/v1/events?ticket={ticket['ticket']}&last_event_id=0")
    assert response.status == 200
    response.close()
    reused = await client.get(f"/api/v1/events?ticket={ticket['ticket']}")
    assert reused.status == 401
    assert (await reused.json())["code"] == "invalid_ticket"


async def test_a_ticket_says_where_a_new_screen_starts(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    user = await sign_up()
    pushed = await push(redis, settings, user.id, 1)
    ticket = await (await client.post("/api/v1/events/tickets", headers=user.headers)).json()
    assert ticket["latest_event_id"] >= pushed
    stranger = await sign_up()
    theirs = await (await client.post("/api/v1/events/tickets",
                                      headers=stranger.headers)).json()
    assert theirs["latest_event_id"] != pushed  # only their own events count


async def test_an_expired_ticket_is_refused(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    user = await sign_up()
    ticket = (await (await client.post("/api/v1/events/tickets",
                                       headers=user.headers)).json())["ticket"]
    key = Keys(settings.redis_key_prefix).event_ticket(ticket)
    await redis.pexpire(key, 1)

    async def expired() -> bool:
        return not await redis.exists(key)

    await eventually(expired)
    assert (await client.get(f"/api/v1/events?ticket={ticket}")).status == 401


async def test_a_ticket_streams_its_own_users_events_only(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    owner_of_ticket, other = await sign_up(), await sign_up()
    mine = await push(redis, settings, owner_of_ticket.id, 1)
    await push(redis, settings, other.id, 2)
    ticket = (await (await client.post("/api/v1/events/tickets",
                                       headers=owner_of_ticket.headers)).json())["ticket"]
    response = await client.get(f"/api/v1/events?ticket={ticket}&last_event_id={mine - 1}")
    [event] = await read_events(response, 1)
    assert int(event["id"]) == mine
    response.close()


@pytest.mark.parametrize("authorization", ["Bearer forged.token.value", "Bearer ", None])
async def test_a_bad_token_is_401_before_the_stream(client: Client, authorization: Any) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/api/v1/events", headers=headers)
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_a_bad_last_event_id_is_400(client: Client, sign_up: Any) -> None:
    user = await sign_up()
    response = await client.get("/api/v1/events",
                                headers={**user.headers, "Last-Event-ID": "abc"})
    assert response.status == 400


async def test_two_instances_each_deliver_their_own_users_events(
    aiohttp_client: Any, make_app: Any, sign_up: Any, worker: dramatiq.Worker
) -> None:
    instance_a = await aiohttp_client(make_app())
    instance_b = await aiohttp_client(make_app())
    alice, bob = await sign_up(), await sign_up()
    stream_a = await instance_a.get("/api/v1/events", headers=alice.headers)
    stream_b = await instance_b.get("/api/v1/events", headers=bob.headers)
    # The welcome notifications are written by the worker and rung through Redis.
    [event_a] = await read_events(stream_a, 1)
    [event_b] = await read_events(stream_b, 1)
    assert (event_a["event"], event_b["event"]) == ("account.welcome", "account.welcome")
    assert event_a["id"] != event_b["id"]
    stream_a.close()
    stream_b.close()


async def test_notifications_list_and_read_marks(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    user, other = await sign_up(), await sign_up()
    first = await push(redis, settings, user.id, 1)
    page = await (await client.get(f"/api/v1/notifications?after_id={first - 1}",
                                   headers=user.headers)).json()
    assert [item["id"] for item in page["items"]][:1] == [first]
    assert page["items"][0]["read_at"] is None
    path = f"/api/v1/notifications/{first}/read"
    assert (await client.post(path, headers=other.headers)).status == 404
    assert (await client.post(path, headers=user.headers)).status == 204
    page = await (await client.get(f"/api/v1/notifications?after_id={first - 1}",
                                   headers=user.headers)).json()
    assert page["items"][0]["read_at"] is not None


async def test_a_client_that_never_reads_does_not_delay_the_others(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    slow, fast = await sign_up(), await sign_up()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: {slow.headers['Authorization']}"
        "\r\n\r\n".encode()
    )
    await writer.drain()
    # Far more than socket buffers hold: the slow stream's writes block.
    bulky = {"text": "가" * 20_000}
    for n in range(150):
        await notify(user_id=slow.id, type="test.bulky", payload=bulky,
                     dedupe_key=f"bulky:{n}", clock=system_clock)
    await ring(redis, Keys(settings.redis_key_prefix), [slow.id])
    stream = await client.get("/api/v1/events", headers=fast.headers)
    expected = await push(redis, settings, fast.id, 7)
    events = await read_events(stream, 1)
    while int(events[-1]["id"]) != expected:
        events += await read_events(stream, 1)
    stream.close()
    writer.close()
    del reader  # never read, on purpose


async def test_a_quiet_stream_gets_heartbeats(client: Client, sign_up: Any) -> None:
    client.app[STREAMS].heartbeat_seconds = 1.0
    user = await sign_up()
    response = await client.get("/api/v1/events", headers=user.headers)

    async def heartbeat() -> None:
        while (await response.content.readline()) != b": heartbeat\n":
            pass

    await asyncio.wait_for(heartbeat(), 5)
    response.close()


async def test_a_client_that_takes_no_write_is_dropped(
    client: Client, sign_up: Any, redis: Redis, settings: Settings
) -> None:
    streams = client.app[STREAMS]
    streams.write_timeout_seconds = 1.0
    slow = await sign_up()
    # Its welcome is written and rung first: nothing but the bulky rows' ring
    # wakes the stream, so it must end on the deadline alone.
    await eventually(lambda: Notification.exists(user_id=slow.id, type=WELCOME))
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: {slow.headers['Authorization']}"
        "\r\n\r\n".encode()
    )
    await writer.drain()
    await eventually(lambda: _open(streams, 1))
    bulky = {"text": "가" * 20_000}
    for n in range(150):
        await notify(user_id=slow.id, type="test.bulky", payload=bulky,
                     dedupe_key=f"bulky:{n}", clock=system_clock)
    await ring(redis, Keys(settings.redis_key_prefix), [slow.id])
    await eventually(lambda: _open(streams, 0), deadline_seconds=10)
    writer.close()
    del reader  # never read, on purpose


async def _open(streams: OpenStreams, count: int) -> bool:
    return len(streams) == count
