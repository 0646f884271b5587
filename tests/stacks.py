"""The Procfile's processes as real subprocesses, for storms that need more
than one worker process, and HTTP helpers to arrange state through them."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fitnus.accounts.models import Role, User
from fitnus.accounts.tokens import AccessTokens
from fitnus.clock import system_clock
from fitnus.config import Settings
from tests.conftest import BROKER_URL
from tests.e2e.test_booking import users_with_tokens
from tests.e2e.test_centers import center_body, in_days, program_body
from tests.e2e.test_processes import ROOT, environment, procfile_commands, wait_until_healthy
from tests.ports import free_port
from tests.services_at_scale import own_broker

STOP_SECONDS = 30
WARM_UP_PRICE = 1
# Each try waits up to 10 s (Prefer: wait) for a worker to decide.
WARM_UP_TRIES = 3


@dataclass
class Stack:
    urls: list[str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.urls[0]


@contextmanager
def running_stack(
    settings: Settings, *, webs: int = 1, workers: int = 2,
    worker_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """``webs`` web processes (each on a port of its own), ``workers`` worker
    processes and the scheduler, on a key prefix and a broker namespace of
    their own; ``worker_env`` changes the workers' environment only."""
    with own_broker(BROKER_URL) as broker_url, _processes(
            settings, webs=webs, workers=workers, worker_env=worker_env,
            broker_url=broker_url) as stack:
        yield stack


@contextmanager
def _processes(
    settings: Settings, *, webs: int, workers: int, worker_env: dict[str, str] | None,
    broker_url: str,
) -> Iterator[Stack]:
    commands = procfile_commands()
    env = environment(settings, BROKER_URL=broker_url,
                      REDIS_KEY_PREFIX=f"{settings.redis_key_prefix}stack-{uuid.uuid4().hex[:6]}:")
    stack = Stack(urls=[])
    for n in range(1, webs + 1):
        port = free_port()
        stack.urls.append(f"http://127.0.0.1:{port}")
        stack.processes[f"web.{n}"] = subprocess.Popen(
            commands["web"], env={**env, "HTTP_PORT": str(port)}, cwd=ROOT)
    for n in range(1, workers + 1):
        stack.processes[f"worker.{n}"] = subprocess.Popen(
            commands["worker"],
            env={**env, "WORKER_METRICS_PORT": str(free_port()), **(worker_env or {})}, cwd=ROOT,
        )
    stack.processes["scheduler"] = subprocess.Popen(
        commands["scheduler"], env={**env, "SCHEDULER_METRICS_PORT": str(free_port())}, cwd=ROOT)
    try:
        yield stack
    finally:
        for process in stack.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in stack.processes.values():
            process.wait(timeout=STOP_SECONDS)


async def owner_headers(settings: Settings) -> dict[str, str]:
    [(user_id, _)] = await users_with_tokens(settings, 1, coupons=0)
    await User.filter(id=user_id).update(role=Role.OWNER)
    token = AccessTokens(
        secret=settings.jwt_secret, algorithm=settings.jwt_algorithm, issuer=settings.jwt_issuer,
        audience=settings.jwt_audience, ttl_seconds=900,
    ).issue(user_id=user_id, role=Role.OWNER, now=system_clock.now())
    return {"Authorization": f"Bearer {token}"}


async def open_timeslot(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], *, capacity: int,
    price: int, starts_at: str | None = None,
) -> int:
    """A center of its own, a program and one timeslot, through the API."""
    center = await (await session.post(f"{url}/api/v1/centers", json=center_body(),
                                       headers=headers)).json()
    program = await (await session.post(f"{url}/api/v1/centers/{center['id']}/programs",
                                        json=program_body(price_coupons=price),
                                        headers=headers)).json()
    timeslot: Any = await (await session.post(
        f"{url}/api/v1/programs/{program['id']}/timeslots",
        json={"starts_at": starts_at or in_days(8), "capacity": capacity}, headers=headers,
    )).json()
    return int(timeslot["id"])


async def until_deciding(session: aiohttp.ClientSession, stack: Stack, settings: Settings,
                         owner: dict[str, str]) -> None:
    """Every web process answers, and a booking through the first is decided:
    the workers consume their broker, so a crowd sent now meets a stack at
    work rather than one still starting."""
    for url in stack.urls:
        await wait_until_healthy(session, url)
    [(_, headers)] = await users_with_tokens(settings, 1, coupons=WARM_UP_PRICE)
    timeslot_id = await open_timeslot(session, stack.url, owner, capacity=1,
                                      price=WARM_UP_PRICE)
    for _ in range(WARM_UP_TRIES):
        async with session.post(f"{stack.url}/api/v1/reservations",
                                json={"timeslot_id": timeslot_id},
                                headers={**headers, "Prefer": "wait=10"}) as response:
            if response.status == 201:
                return
            assert response.status == 202, await response.text()
    raise AssertionError("no worker decided a booking")
