"""schemathesis over every operation of the served /openapi.json, run the way a
stranger runs it against `make run`: its command line, every phase (examples,
coverage, fuzzing, and the stateful phase that follows the links from what one
operation creates to the operations that read it), positive and negative
inputs, with an owner's token and without one. Any answer the document does
not declare, in status, media type or shape, fails the suite; so does a 5xx,
an operation that ignores its auth, and a method it does not refuse with 405.

The live server runs in this process on its own event loop in a thread; the
fuzzer is schemathesis' own CLI in a child process, from a scratch directory.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import requests
from aiohttp import web
from tortoise.context import TortoiseContext

from fitnus.config import Settings
from tests.conftest import REDIS_URL, TEST_PASSWORD, unique_email
from tests.fakes import kakao_login, kakaopay
from web.app import create_app

SERVER_START_SECONDS = 10
CHECKS = (
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "ignored_auth", "unsupported_method",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
SEED = 18
# Per operation and phase (the stateful phase: scenarios); fewer since the API
# grew past 100 operations, to keep the suite under 15 minutes. Each run takes
# one to two minutes on two cores (more under load); the README shows a
# longer hunt. The timeout only stops a run that hangs; the tests' own
# timeout (pytest-timeout's, 120 s for the rest) leaves it room.
EXAMPLES_PER_OPERATION = 25
RUN_TIMEOUT_SECONDS = 300
STATEFUL_TESTCASE = "Stateful tests"
# For a signed-in caller the event stream stays open until the client leaves:
# a request/response fuzzer would wait for its whole request timeout on each
# case. Without a token it answers at once, so that run includes it.
ENDLESS_FOR_A_SIGNED_IN_CALLER = "/api/v1/events"
# An auction's stream is open to anyone: endless for every caller once the
# fuzzer finds an auction that exists. Its answers to bad input are tested
# in tests/e2e/test_auctions.py.
ENDLESS_FOR_EVERYONE = "/api/v1/auctions/{auction_id}/stream"


def listening_socket() -> socket.socket:
    """A socket bound and listening before the server starts: its port is
    known at once and no other socket can take it in between, as one probed
    then closed could be (a port race failed CI once)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


@pytest.fixture(scope="module")
def live_server(
    settings: Settings, database: TortoiseContext, messages: Any, worker: dramatiq.Worker
) -> Iterator[str]:
    """The service, with Kakao Pay and Kakao Login played by the local fakes
    so that purchases and Kakao sign-ins are fuzzed, not refused as unconfigured."""
    sockets = [listening_socket() for _ in range(3)]
    port, pay_port, login_port = (listener.getsockname()[1] for listener in sockets)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failures: list[BaseException] = []
    configured = replace(
        settings, kakaopay_base_url=f"http://127.0.0.1:{pay_port}",
        kakaopay_secret_key=kakaopay.SECRET_KEY,
        kakao_auth_base_url=f"http://127.0.0.1:{login_port}",
        kakao_api_base_url=f"http://127.0.0.1:{login_port}",
        kakao_client_id=kakao_login.CLIENT_ID, kakao_client_secret=kakao_login.CLIENT_SECRET,
        kakao_redirect_uri=f"http://127.0.0.1:{port}/api/v1/auth/kakao/callback")
    runners = [
        web.AppRunner(create_app(configured, redis_url=REDIS_URL, messages=messages)),
        web.AppRunner(kakaopay.FakeKakaoPay().app()),
        web.AppRunner(kakao_login.FakeKakaoLogin().app()),
    ]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        started: list[web.AppRunner] = []
        try:
            for runner, listener in zip(runners, sockets, strict=True):
                loop.run_until_complete(runner.setup())
                started.append(runner)
                loop.run_until_complete(web.SockSite(runner, listener).start())
        except Exception as failure:
            failures.append(failure)
        ready.set()
        if not failures:
            loop.run_forever()
        for runner in started:
            loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="fuzz-server", daemon=True)
    thread.start()
    assert ready.wait(SERVER_START_SECONDS), "the fuzzed service did not start in time"
    assert not failures, f"the fuzzed service failed to start: {failures[0]!r}"
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(SERVER_START_SECONDS)


@pytest.fixture(scope="module")
def owner_token(live_server: str) -> str:
    """An owner reaches the most: centers, programs and timeslots, then seats on them."""
    email = unique_email("fuzz")
    signup = requests.post(
        f"{live_server}/api/v1/auth/signup",
        json={"email": email, "password": TEST_PASSWORD, "name": "fuzz", "role": "owner"},
        timeout=10,
    )
    assert signup.status_code == 201, signup.text
    login = requests.post(
        f"{live_server}/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def fuzz(base_url: str, scratch: Path, *options: str) -> set[str]:
    """Run schemathesis; fail with its report unless every case passed every
    check. Returns the JUnit test case names: one per operation, and the
    stateful phase's."""
    junit = scratch / "junit.xml"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "run",
        f"{base_url}/openapi.json", "--checks", ",".join(CHECKS), "--phases", ",".join(PHASES),
        "--mode", "all", "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED),
        "--workers", "1", "--report", "junit", "--report-junit-path", str(junit), *options,
    ]
    # schemathesis and hypothesis keep state in the working directory: a
    # scratch one keeps the run reproducible and the checkout clean.
    finished = subprocess.run(
        command, cwd=scratch, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    suite = ElementTree.parse(junit).getroot()  # noqa: S314 - written by the run above
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    return {case.get("name", "") for case in suite.iter("testcase")}


def served_operations(base_url: str) -> set[str]:
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    return {f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method in item}


def fuzzed(base_url: str, *excluded: str) -> set[str]:
    """What a run should have tested: every operation served but the
    excluded paths' GETs, and the stateful phase."""
    left_out = {f"GET {path}" for path in excluded}
    return {label for label in served_operations(base_url)
            if label not in left_out} | {STATEFUL_TESTCASE}


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_every_answer_to_an_owner_is_one_the_schema_declares(
    live_server: str, owner_token: str, tmp_path: Path
) -> None:
    tested = fuzz(live_server, tmp_path, "-H", f"Authorization: Bearer {owner_token}",
                  "--exclude-path", ENDLESS_FOR_A_SIGNED_IN_CALLER,
                  "--exclude-path", ENDLESS_FOR_EVERYONE)
    assert tested == fuzzed(live_server, ENDLESS_FOR_A_SIGNED_IN_CALLER, ENDLESS_FOR_EVERYONE)


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_every_answer_to_a_stranger_is_one_the_schema_declares(
    live_server: str, tmp_path: Path
) -> None:
    tested = fuzz(live_server, tmp_path, "--exclude-path", ENDLESS_FOR_EVERYONE)
    assert tested == fuzzed(live_server, ENDLESS_FOR_EVERYONE)
