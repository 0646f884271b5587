"""Schema-driven fuzzing of every operation in /openapi.json: whatever the
input, the answer is never a 5xx.

schemathesis drives a live server over real HTTP with its synchronous client,
so the app runs on its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from tortoise.context import TortoiseContext

from fitnus.config import Settings
from tests.conftest import REDIS_URL, TEST_PASSWORD, unique_email
from web.app import create_app

SERVER_START_SECONDS = 10


@pytest.fixture(scope="module")
def live_server(
    settings: Settings, database: TortoiseContext, messages: Any
) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(
        create_app(settings, redis_url=REDIS_URL, messages=messages)
    )

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="fuzz-server", daemon=True)
    thread.start()
    assert ready.wait(SERVER_START_SECONDS)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(SERVER_START_SECONDS)


@pytest.fixture(scope="module")
def bearer(live_server: str) -> dict[str, str]:
    email = unique_email("fuzz")
    signup = requests.post(
        f"{live_server}/api/v1/auth/signup",
        json={"email": email, "password": TEST_PASSWORD, "name": "fuzz"}, timeout=10,
    )
    assert signup.status_code == 201
    login = requests.post(
        f"{live_server}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD},
        timeout=10,
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


EXAMPLES_PER_OPERATION_AND_MODE = 40
# A request/response fuzzer cannot end an endless stream; its input handling
# (tickets, ids, tokens) is tested in test_events.py.
ENDLESS_STREAMS = {"GET /api/v1/events"}


def fuzz(base_url: str, headers: dict[str, str]) -> list[str]:
    """Run every operation of the served schema in positive and negative
    generation modes; return the labels that were exercised."""
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in ENDLESS_STREAMS:
            continue
        declared = document["paths"][operation.path][operation.method.lower()]
        takes_input = bool(declared["parameters"]) or "requestBody" in declared
        # Negative cases need an input to break; an operation without one has none.
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][: 2 if takes_input else 1]
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE, deadline=None, database=None,
                suppress_health_check=list(HealthCheck),
            )
            def no_server_error(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=base_url, headers=headers, checks=[not_a_server_error]
                )

            no_server_error()
        exercised.append(operation.label)
    return exercised


def test_no_input_with_a_valid_token_produces_a_server_error(
    live_server: str, bearer: dict[str, str]
) -> None:
    exercised = fuzz(live_server, bearer)
    assert "POST /api/v1/auth/signup" in exercised
    assert "GET /api/v1/commands/{command_id}" in exercised


def test_no_unauthenticated_input_produces_a_server_error(live_server: str) -> None:
    fuzz(live_server, {})
