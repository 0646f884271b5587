"""Chooses the search backend from the settings."""

from __future__ import annotations

from typing import Any, Protocol

from fitnus.config import Settings
from fitnus.redis_client import RedisClient
from fitnus.search.index import CenterIndex
from fitnus.search.redis_geo import RedisGeoIndex


class CenterIndexFactory(Protocol):
    def __call__(
        self, settings: Settings, redis: RedisClient, *, serving: bool = False,
    ) -> CenterIndex:
        ...


def open_center_index(
    settings: Settings, redis: RedisClient, *, serving: bool = False,
    elasticsearch_node_class: Any = None,
) -> CenterIndex:
    """``serving``: for a web process, which answers searches (and may keep
    them a moment, SEARCH_CACHE_SECONDS); workers and the CLI only write.
    ``elasticsearch_node_class`` lets tests speak to a server that refuses the
    client's compatibility media types (see tests/search_servers.py)."""
    if settings.search_backend == "redis":
        return RedisGeoIndex(redis=redis, prefix=settings.redis_key_prefix,
                             cache_seconds=settings.search_cache_seconds if serving else 0)
    from elasticsearch import AsyncElasticsearch

    from fitnus.search.elastic import ElasticsearchIndex

    options = {"node_class": elasticsearch_node_class} if elasticsearch_node_class else {}
    client = AsyncElasticsearch(settings.elasticsearch_url, **options)
    return ElasticsearchIndex(client=client, index=settings.elasticsearch_index)
