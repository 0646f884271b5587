"""Real parts only: a fresh MariaDB database (or SQLite file) per run, a Redis key
prefix per run, real dramatiq workers in-process, real HTTP via aiohttp's
test server.

FITNUS_TEST_DATABASE=mysql|sqlite picks the database (make test runs both);
FITNUS_TEST_MYSQL_URL and FITNUS_TEST_REDIS_URL point at the servers (the
latter may be a ``redis+cluster://`` URL), FITNUS_TEST_BROKER_URL at the
workers' broker when it is not that Redis (make test's cluster pass: a Redis
Cluster and RabbitMQ, tests/services_at_scale.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
import dramatiq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from tortoise.context import TortoiseContext

from actors.setup import install_broker
from fitnus.clock import Clock, system_clock
from fitnus.config import Settings, load_settings
from fitnus.db import migrate, tortoise_config
from fitnus.redis_client import RedisClient, is_cluster_url, open_redis
from tests.search_servers import open_test_center_index
from web.app import create_app

pytest_plugins = ("tests.browser",)

RUN_ID = secrets.token_hex(4)
TEST_BACKEND = os.environ.get("FITNUS_TEST_DATABASE", "mysql")
MYSQL_URL = os.environ.get("FITNUS_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306")
REDIS_URL = os.environ.get("FITNUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_URL = os.environ.get("FITNUS_TEST_BROKER_URL", "")
TEST_PASSWORD = "correct horse battery"
WORKER_DEADLINE_SECONDS = 10.0


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def database_url(var_dir: Path) -> Iterator[str]:
    if TEST_BACKEND == "sqlite":
        yield f"sqlite://{var_dir / 'fitnus.sqlite3'}"
        return
    name = f"fitnus_test_{RUN_ID}"
    yield f"{MYSQL_URL}/{name}"
    asyncio.run(_drop_mysql_database(name))


async def _drop_mysql_database(name: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(MYSQL_URL)
    connection = await aiomysql.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
        password=parts.password or "",
    )
    try:
        async with connection.cursor() as cursor:
            # A run that never migrated has no database: the server's note
            # about that arrives as a Python warning.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", aiomysql.Warning)
                await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


@pytest.fixture(scope="session")
def settings(var_dir: Path, database_url: str) -> Settings:
    return load_settings(
        {
            "FITNUS_ENV": "test",
            "FITNUS_VAR_DIR": str(var_dir),
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "BROKER_URL": BROKER_URL,
            "REDIS_KEY_PREFIX": f"fitnus-test-{RUN_ID}:",
            "JWT_SECRET": secrets.token_urlsafe(48),
            # Argon2id at test strength: the parameters are the ones production
            # reads, only smaller, so hashing still runs the real code path.
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "LOG_LEVEL": "WARNING",
            # Every test client comes from 127.0.0.1: the per-address bound is
            # tested on its own with a small value and a key prefix of its own.
            "LOGIN_FAILURES_PER_ADDRESS": "1000000",
        }
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[TortoiseContext]:
    """The test's own view of the database, for arranging and asserting.

    Global fallback: code that has not entered a context (the tests) uses this
    one, while the app and the workers enter their own.
    """
    await migrate(settings.database_url)
    context = TortoiseContext()
    with context:
        await context.init(config=tortoise_config(settings.database_url),
                           _enable_global_fallback=True)
    yield context
    await context.close_connections()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[RedisClient]:
    client = open_redis(REDIS_URL)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{settings.redis_key_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's own Redis when it is a cluster (the cluster pass), or
    else a cluster of three masters started for the session."""
    if is_cluster_url(REDIS_URL):
        yield REDIS_URL
        return
    from tests.redis_cluster import redis_cluster

    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url


@pytest.fixture(scope="session")
def broker(settings: Settings) -> dramatiq.Broker:
    broker = install_broker(settings, redis_url=REDIS_URL)
    broker.flush_all()
    return broker


@pytest.fixture(scope="session")
def worker(broker: dramatiq.Broker, database: TortoiseContext) -> Iterator[dramatiq.Worker]:
    """A real dramatiq worker in this process, on its own threads and loop."""
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def messages(broker: dramatiq.Broker) -> Any:
    from actors.dispatch import MESSAGES

    return MESSAGES


@pytest.fixture(scope="session")
def osmem_url() -> Iterator[str]:
    """An in-memory OpenSearch-compatible server from its wheel, for the session."""
    from osmem_server import OsmemServer

    with OsmemServer.start() as server:
        yield server.url
    # The launcher leaves its end of the server's output pipe open.
    if server.process.stdout is not None:
        server.process.stdout.close()


@pytest.fixture(scope="session")
def kafka_servers() -> Iterator[str]:
    """A Kafka-protocol broker (Tansu) for the session, with the domain
    events' topics made, three partitions each."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from fitnus.events.outbox import TOPICS
    from tests.kafka_broker import tansu

    async def make_topics(servers: str) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)
                                       for topic in TOPICS])
        finally:
            await admin.close()

    with tansu() as servers:
        asyncio.run(make_topics(servers))
        yield servers


@pytest.fixture
def make_app(
    settings: Settings, database: TortoiseContext, redis: RedisClient, messages: Any,
) -> Callable[..., web.Application]:
    def make(*, clock: Clock = system_clock, **overrides: Any) -> web.Application:
        from dataclasses import replace

        return create_app(
            replace(settings, **overrides), redis_url=REDIS_URL, messages=messages,
            clock=clock, center_index_factory=open_test_center_index,
        )

    return make


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    make_app: Callable[..., web.Application],
) -> TestClient[Any, Any]:
    return await aiohttp_client(make_app())


@dataclass
class Account:
    id: int
    email: str
    password: str
    access_token: str
    refresh_token: str
    welcome_command_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@fitnus.example.com"


@pytest.fixture
def sign_up(client: TestClient[Any, Any]) -> Callable[..., Awaitable[Account]]:
    """Factory: an account created and logged in through the public API."""

    async def create(role: str = "user", name: str = "테스트 사용자") -> Account:
        email = unique_email(role)
        response = await client.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": TEST_PASSWORD, "name": name, "role": role},
        )
        assert response.status == 201, await response.text()
        created = await response.json()
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        assert response.status == 200, await response.text()
        tokens = await response.json()
        return Account(
            id=created["id"], email=email, password=TEST_PASSWORD,
            access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            welcome_command_id=created["welcome_command_id"],
        )

    return create


async def eventually(
    check: Callable[[], Awaitable[bool]], *, deadline_seconds: float = WORKER_DEADLINE_SECONDS
) -> None:
    """Poll a condition until it holds or the deadline passes (no blind sleeps)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_seconds
    while not await check():
        if loop.time() > give_up:
            raise AssertionError(f"condition not met within {deadline_seconds} s")
        await asyncio.sleep(0.02)
