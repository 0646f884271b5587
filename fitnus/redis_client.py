"""One way to reach Redis for every process: a single server, or a Redis
Cluster named by a ``redis+cluster://host:port[,host:port...]`` URL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster

if TYPE_CHECKING:
    from fitnus.config import Settings
from fitnus.embedded_redis import ensure_embedded_redis
from fitnus.errors import ConfigurationError

# What the domain is written against: every command it sends keeps to one
# hash slot, so either client serves it.
RedisClient = Redis | RedisCluster

CLUSTER_SCHEME = "redis+cluster://"
MAX_CONNECTIONS = 128
POOL_WAIT_SECONDS = 5
# A cluster node's pool also serves pub/sub listeners, beside the commands.
CLUSTER_NODE_EXTRA_CONNECTIONS = 16


def resolve_redis_url(settings: Settings) -> str:
    return settings.redis_url or ensure_embedded_redis(settings.var_dir)


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def open_redis(url: str) -> RedisClient:
    """A bounded pool that makes a burst wait for a connection instead of
    failing ("Too many connections") or opening thousands of sockets."""
    if is_cluster_url(url):
        return BoundedRedisCluster(startup_nodes=cluster_nodes(url))
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


def cluster_nodes(url: str) -> list[ClusterNode]:
    """The startup nodes a ``redis+cluster://`` URL names (any one finds the rest)."""
    nodes = []
    for address in url.removeprefix(CLUSTER_SCHEME).rstrip("/").split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"a cluster node must be host:port, not {address!r}")
        nodes.append(ClusterNode(host, int(port)))
    return nodes


class BoundedRedisCluster(RedisCluster):
    """redis-py's cluster client raises once a node's pool is full rather than
    waiting as ``BlockingConnectionPool`` does; commands in flight are bounded
    here instead, so a flash crowd queues for a connection as on one server."""

    def __init__(self, *, startup_nodes: list[ClusterNode]) -> None:
        super().__init__(
            startup_nodes=startup_nodes,
            max_connections=MAX_CONNECTIONS + CLUSTER_NODE_EXTRA_CONNECTIONS,
            health_check_interval=30, socket_connect_timeout=5,
        )
        self._in_flight = asyncio.Semaphore(MAX_CONNECTIONS)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None,
                 shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused there
        # As redis-py makes its own (mypy reads an attribute it sets as abstract).
        return _BoundedPipeline(  # type: ignore[abstract]
            self, transaction, in_flight=self._in_flight)


class _BoundedPipeline(ClusterPipeline):
    """A pipeline that counts as one command in flight while it runs."""

    def __init__(self, client: RedisCluster, transaction: bool | None, *,
                 in_flight: asyncio.Semaphore) -> None:
        super().__init__(client, transaction)
        self._in_flight = in_flight

    async def execute(self, raise_on_error: bool = True,
                      allow_redirections: bool = True) -> list[Any]:
        async with self._in_flight:
            return await super().execute(raise_on_error, allow_redirections)
