"""Chooses the search backend from the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from fitnus.config import Settings
from fitnus.search.index import CenterIndex
from fitnus.search.redis_geo import RedisGeoIndex

CenterIndexFactory = Callable[[Settings, Redis], CenterIndex]


def open_center_index(
    settings: Settings, redis: Redis, *, elasticsearch_node_class: Any = None
) -> CenterIndex:
    """``elasticsearch_node_class`` lets tests speak to a server that refuses the
    client's compatibility media types (see tests/search_servers.py)."""
    if settings.search_backend == "redis":
        return RedisGeoIndex(redis=redis, prefix=settings.redis_key_prefix)
    from elasticsearch import AsyncElasticsearch

    from fitnus.search.elastic import ElasticsearchIndex

    options = {"node_class": elasticsearch_node_class} if elasticsearch_node_class else {}
    client = AsyncElasticsearch(settings.elasticsearch_url, **options)
    return ElasticsearchIndex(client=client, index=settings.elasticsearch_index)
