"""The Procfile's processes, as real subprocesses: two web processes and one
worker serve the same users."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tortoise.context import TortoiseContext

from fitnus.config import Settings
from tests.conftest import BROKER_URL, REDIS_URL, TEST_PASSWORD, unique_email
from tests.ports import free_port
from tests.services_at_scale import own_broker

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_SECONDS = 30.0


def procfile_commands() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        words = shlex.split(command)
        assert words[0] == "fitnus"
        entries[name.strip()] = [sys.executable, "-m", "fitnus", *words[1:]]
    return entries


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    values = asdict(settings)
    env = dict(os.environ)
    env.update(
        FITNUS_ENV="test", FITNUS_VAR_DIR=str(settings.var_dir),
        DATABASE_URL=values["database_url"], REDIS_URL=REDIS_URL, BROKER_URL=BROKER_URL,
        # A prefix (and so a dramatiq namespace) of their own: only the worker
        # subprocess can decide the commands these web processes send.
        REDIS_KEY_PREFIX=f"{settings.redis_key_prefix}procfile:", JWT_SECRET=settings.jwt_secret,
        PASSWORD_HASH_TIME_COST="1", PASSWORD_HASH_MEMORY_KIB="1024",
        WORKER_METRICS_PORT=str(free_port()), LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@pytest.fixture
def procfile_stack(settings: Settings, database: TortoiseContext) -> Iterator[list[str]]:
    commands = procfile_commands()
    ports = [free_port(), free_port()]
    with own_broker(BROKER_URL) as broker_url:
        processes = [
            subprocess.Popen(commands["web"], env=environment(
                settings, HTTP_PORT=str(port), BROKER_URL=broker_url), cwd=ROOT)
            for port in ports
        ]
        processes.append(subprocess.Popen(
            commands["worker"], env=environment(settings, BROKER_URL=broker_url), cwd=ROOT))
        try:
            yield [f"http://127.0.0.1:{port}" for port in ports]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                assert process.wait(timeout=30) == 0


async def wait_until_healthy(session: aiohttp.ClientSession, base: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_DEADLINE_SECONDS
    while True:
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_two_web_processes_and_a_worker_serve_the_same_users(
    procfile_stack: list[str],
) -> None:
    first, second = procfile_stack
    email = unique_email()
    async with aiohttp.ClientSession() as session:
        for base in procfile_stack:
            await wait_until_healthy(session, base)
        signup: Any = await (await session.post(
            f"{first}/api/v1/auth/signup",
            json={"email": email, "password": TEST_PASSWORD, "name": "두 프로세스"},
        )).json()
        tokens = await (await session.post(
            f"{first}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        me = await session.get(f"{second}/api/v1/me", headers=bearer)
        assert me.status == 200
        assert (await me.json())["email"] == email

        refreshed = await session.post(
            f"{second}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status == 200
        reused = await session.post(
            f"{first}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert reused.status == 401

        command = await session.get(
            f"{second}/api/v1/commands/{signup['welcome_command_id']}",
            headers={**bearer, "Prefer": "wait=10"},
        )
        assert (await command.json())["status"] == "succeeded"
