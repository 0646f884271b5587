"""One way to reach Redis for every process."""

from __future__ import annotations

from redis.asyncio import Redis

from fitnus.config import Settings
from fitnus.embedded_redis import ensure_embedded_redis


def resolve_redis_url(settings: Settings) -> str:
    return settings.redis_url or ensure_embedded_redis(settings.var_dir)


def open_redis(url: str) -> Redis:
    # health_check_interval: a pooled connection idle behind a NAT or proxy is
    # checked before use instead of failing the first command after the pause.
    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5)
