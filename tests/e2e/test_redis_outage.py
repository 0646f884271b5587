"""Redis stops under a running app: everything that fails closed on it answers
503 problem+json with Retry-After, and nothing is left half-done."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from fitnus.accounts.service import WELCOME_COMMAND
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from fitnus.commands.models import Command
from fitnus.config import Settings
from tests.e2e.test_booking import PRICE, fund, open_session
from tests.ports import free_port
from tests.search_servers import open_test_center_index
from web.app import create_app

Client = TestClient[Any, Any]
START_SECONDS = 10


class RedisServer:
    """A redis-server of the test's own, on a free port, that it can stop."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + START_SECONDS
        try:
            while True:
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        finally:
            probe.close()

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=START_SECONDS)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


async def test_with_redis_down_bookings_cancellations_and_tickets_answer_503(
    aiohttp_client: Any, client: Client, sign_up: Any, settings: Settings, messages: Any,
    own_redis: RedisServer,
) -> None:
    session = await open_session(client, sign_up, capacity=5)
    user = await sign_up()
    await fund(user.id, PRICE)
    timeslot = await Timeslot.get(id=session.timeslot_id)
    held = await Reservation.create(
        user_id=user.id, timeslot_id=timeslot.id, status=ReservationStatus.CONFIRMED,
        active=True, price_coupons=PRICE, starts_at=timeslot.starts_at,
        ends_at=timeslot.ends_at, command_id=uuid.uuid4(), created_at=system_clock.now(),
    )
    app = create_app(settings, redis_url=own_redis.url, messages=messages,
                     center_index_factory=open_test_center_index)
    on_own_redis = await aiohttp_client(app)
    ticket = await on_own_redis.post("/api/v1/events/tickets", headers=user.headers)
    assert ticket.status == 201
    spare = (await ticket.json())["ticket"]

    own_redis.stop()
    calls: list[Callable[[], Awaitable[ClientResponse]]] = [
        lambda: on_own_redis.post("/api/v1/reservations", json={"timeslot_id": timeslot.id},
                                  headers=user.headers),
        lambda: on_own_redis.post("/api/v1/reservations", json={"timeslot_id": timeslot.id},
                                  headers={**user.headers, "Idempotency-Key": uuid.uuid4().hex}),
        lambda: on_own_redis.delete(f"/api/v1/reservations/{held.id}", headers=user.headers),
        lambda: on_own_redis.post("/api/v1/events/tickets", headers=user.headers),
        lambda: on_own_redis.get(f"/api/v1/events?ticket={spare}"),
        lambda: on_own_redis.get(f"/api/v1/commands/{uuid.uuid4()}", headers=user.headers),
    ]
    for call in calls:
        response = await call()
        assert response.status == 503, (response.url, await response.text())
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "service_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    # Nothing was decided, charged or cancelled behind the 503s.
    assert not await Command.filter(user_id=user.id).exclude(kind=WELCOME_COMMAND).exists()
    assert (await Reservation.get(id=held.id)).active
    assert await Reservation.filter(user_id=user.id).count() == 1

    own_redis.start()  # back, empty: the app reconnects and books again
    again = await on_own_redis.post("/api/v1/reservations", json={"timeslot_id": timeslot.id},
                                    headers=user.headers)
    assert again.status in (202, 409), await again.text()
