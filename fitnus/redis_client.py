"""One way to reach Redis for every process."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from fitnus.config import Settings
from fitnus.embedded_redis import ensure_embedded_redis


def resolve_redis_url(settings: Settings) -> str:
    return settings.redis_url or ensure_embedded_redis(settings.var_dir)


MAX_CONNECTIONS = 128
POOL_WAIT_SECONDS = 5


def open_redis(url: str) -> Redis:
    """A bounded pool that makes a burst wait for a connection instead of
    failing ("Too many connections") or opening thousands of sockets."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        # A pooled connection idle behind a NAT or proxy is checked before use
        # instead of failing the first command after the pause.
        health_check_interval=30,
        socket_connect_timeout=5,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
