"""Failed logins are limited per email and per client address, in Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from fitnus.accounts.throttle import LoginThrottle
from fitnus.config import Settings
from fitnus.errors import RateLimited
from fitnus.keys import Keys
from tests.conftest import TEST_PASSWORD, unique_email


async def login(client: Any, email: str, password: str) -> Any:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_the_sixth_failure_in_the_window_is_429_even_with_the_right_password(
    client: Any, sign_up: Any
) -> None:
    account = await sign_up()
    for _ in range(5):
        assert (await login(client, account.email, "wrong password")).status == 401
    blocked = await login(client, account.email, TEST_PASSWORD)
    assert blocked.status == 429
    assert (await blocked.json())["code"] == "too_many_login_attempts"
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60


async def test_a_blocked_email_does_not_block_other_accounts(client: Any, sign_up: Any) -> None:
    victim, bystander = await sign_up(), await sign_up()
    for _ in range(5):
        await login(client, victim.email, "wrong password")
    assert (await login(client, bystander.email, TEST_PASSWORD)).status == 200


async def test_successful_logins_are_not_throttled_and_reset_the_email_count(
    client: Any, sign_up: Any
) -> None:
    account = await sign_up()
    for _ in range(20):
        assert (await login(client, account.email, TEST_PASSWORD)).status == 200
    for _ in range(4):
        await login(client, account.email, "wrong password")
    assert (await login(client, account.email, TEST_PASSWORD)).status == 200
    for _ in range(4):
        await login(client, account.email, "wrong password")
    assert (await login(client, account.email, TEST_PASSWORD)).status == 200


async def test_one_address_spraying_many_emails_hits_the_address_bound(
    aiohttp_client: Any, make_app: Any, settings: Settings
) -> None:
    isolated_prefix = f"{settings.redis_key_prefix}{uuid.uuid4().hex}:"
    client = await aiohttp_client(
        make_app(login_failures_per_address=8, redis_key_prefix=isolated_prefix)
    )
    for _ in range(8):
        assert (await login(client, unique_email(), "guess")).status == 401
    assert (await login(client, unique_email(), "guess")).status == 429


async def test_the_throttle_fails_open_when_redis_is_unreachable() -> None:
    unreachable = Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    throttle = LoginThrottle(
        redis=unreachable, keys=Keys("t:"), failures_per_email=1, failures_per_address=1,
        window_seconds=60,
    )
    for _ in range(3):
        await throttle.record_failure(email="a@example.com", address="1.2.3.4")
        await throttle.check(email="a@example.com", address="1.2.3.4")
    await unreachable.aclose()


async def test_the_throttle_refuses_once_the_bound_is_reached(redis: Redis) -> None:
    throttle = LoginThrottle(
        redis=redis, keys=Keys(f"t-{unique_email()}:"), failures_per_email=2,
        failures_per_address=100, window_seconds=60,
    )
    await throttle.record_failure(email="a@example.com", address="1.2.3.4")
    await throttle.check(email="a@example.com", address="1.2.3.4")
    await throttle.record_failure(email="a@example.com", address="1.2.3.4")
    with pytest.raises(RateLimited) as refused:
        await throttle.check(email="a@example.com", address="1.2.3.4")
    assert 0 < refused.value.retry_after_seconds <= 60
