"""Failed logins are limited per address, per (email, address) and per email, in Redis.

Test clients connect from other loopback addresses (127.0.0.2, ...) to stand
for other people: the server sees each as a different client address.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from fitnus.accounts.throttle import LoginThrottle
from fitnus.config import Settings
from fitnus.errors import RateLimited
from fitnus.keys import Keys
from tests.conftest import TEST_PASSWORD, unique_email

pytestmark = pytest.mark.cluster


async def login(client: Any, email: str, password: str) -> Any:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: int  # 0 when the answer has no Retry-After


@dataclass(frozen=True)
class LoginFrom:
    client: Any
    session: aiohttp.ClientSession

    async def __call__(self, email: str, password: str) -> Answer:
        async with self.session.post(self.client.make_url("/api/v1/auth/login"),
                                     json={"email": email, "password": password}) as response:
            await response.read()
            return Answer(response.status, int(response.headers.get("Retry-After", 0)))


@pytest.fixture
async def address(client: Any) -> AsyncIterator[Callable[..., LoginFrom]]:
    """Factory: log in to an app's server from a given loopback address."""
    sessions: list[aiohttp.ClientSession] = []

    def login_from(ip: str, app_client: Any = client) -> LoginFrom:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ip, 0)))
        sessions.append(session)
        return LoginFrom(app_client, session)

    yield login_from
    for session in sessions:
        await session.close()


async def test_a_strangers_failures_do_not_lock_the_owner_out(
    client: Any, sign_up: Any, address: Callable[..., LoginFrom]
) -> None:
    owner = await sign_up()
    stranger, owners_phone = address("127.0.0.2"), address("127.0.0.3")
    for _ in range(5):
        assert (await stranger(owner.email, "guess")).status == 401
    stopped = await stranger(owner.email, TEST_PASSWORD)
    assert stopped.status == 429
    assert 0 < stopped.retry_after <= 15 * 60
    assert (await owners_phone(owner.email, TEST_PASSWORD)).status == 200
    assert (await login(client, owner.email, TEST_PASSWORD)).status == 200


async def test_guessing_spread_over_addresses_is_stopped_and_the_owner_still_gets_in(
    aiohttp_client: Any, make_app: Any, sign_up: Any, address: Callable[..., LoginFrom]
) -> None:
    owner = await sign_up()
    app_client = await aiohttp_client(make_app(login_failures_per_email=6))
    guessers = [address(f"127.0.1.{n}", app_client) for n in range(1, 4)]
    for guesser in guessers:
        for _ in range(2):
            assert (await guesser(owner.email, "guess")).status == 401
    # Six failures for this email: every address that has failed is stopped...
    for guesser in guessers:
        stopped = await guesser(owner.email, "guess")
        assert stopped.status == 429
        assert 0 < stopped.retry_after <= 15 * 60
    # ...and each new one after its first failure.
    newcomer = address("127.0.1.4", app_client)
    assert (await newcomer(owner.email, "guess")).status == 401
    assert (await newcomer(owner.email, TEST_PASSWORD)).status == 429
    # The owner's address has not failed: the owner gets in.
    assert (await address("127.0.1.5", app_client)(owner.email, TEST_PASSWORD)).status == 200


async def test_the_sixth_failure_from_one_address_is_429_even_with_the_right_password(
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


async def test_successful_logins_are_not_throttled_and_reset_the_count_of_their_address(
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
        redis=unreachable, keys=Keys("t:"), failures_per_address=1,
        failures_per_email_and_address=1, failures_per_email=1, window_seconds=60,
        email_window_seconds=60,
    )
    for _ in range(3):
        await throttle.record_failure(email="a@example.com", address="1.2.3.4")
        await throttle.check(email="a@example.com", address="1.2.3.4")
    await throttle.record_success(email="a@example.com", address="1.2.3.4")
    await unreachable.aclose()


async def test_the_throttle_refuses_once_the_bound_is_reached(redis: Redis) -> None:
    throttle = LoginThrottle(
        redis=redis, keys=Keys(f"t-{unique_email()}:"), failures_per_address=100,
        failures_per_email_and_address=2, failures_per_email=100, window_seconds=60,
        email_window_seconds=600,
    )
    await throttle.record_failure(email="a@example.com", address="1.2.3.4")
    await throttle.check(email="a@example.com", address="1.2.3.4")
    await throttle.record_failure(email="a@example.com", address="1.2.3.4")
    with pytest.raises(RateLimited) as refused:
        await throttle.check(email="a@example.com", address="1.2.3.4")
    assert 0 < refused.value.retry_after_seconds <= 60
    await throttle.check(email="a@example.com", address="5.6.7.8")


async def test_past_the_email_bound_only_addresses_that_failed_are_refused(redis: Redis) -> None:
    throttle = LoginThrottle(
        redis=redis, keys=Keys(f"t-{unique_email()}:"), failures_per_address=100,
        failures_per_email_and_address=100, failures_per_email=3, window_seconds=60,
        email_window_seconds=600,
    )
    for address in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        await throttle.record_failure(email="a@example.com", address=address)
    with pytest.raises(RateLimited) as refused:
        await throttle.check(email="a@example.com", address="2.2.2.2")
    # Free again when this address's failure ages out, before the email's does.
    assert 0 < refused.value.retry_after_seconds <= 60
    await throttle.check(email="a@example.com", address="4.4.4.4")
    await throttle.check(email="b@example.com", address="2.2.2.2")
    await throttle.record_success(email="a@example.com", address="2.2.2.2")
    await throttle.check(email="a@example.com", address="2.2.2.2")
