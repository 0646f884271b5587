"""Center search on Elasticsearch (the official async client).

The index is created by the service if missing: a ``geo_point``, keyword
sports, and names analyzed with nori where the cluster has the plugin, with
an n-gram analyzer where it does not. The text filter is the same substring
rule as the Redis backend: an n-gram match narrows, a wildcard on the
lower-cased name decides. Writes use external versions (the center's), so an
older version never replaces a newer one, deletions included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast

from elasticsearch import AsyncElasticsearch, BadRequestError, ConflictError, NotFoundError
from elasticsearch.helpers import async_bulk

from fitnus.search.index import (
    CenterDocument,
    CenterHit,
    CenterQuery,
    Fill,
    SearchPage,
    page_from_sorted,
    summary_json,
)

log = logging.getLogger(__name__)

# Lucene's haversine (SloppyMath), which geo_distance and _geo_distance use.
LUCENE_EARTH_RADIUS_M = 6371008.7714
MIN_RADIUS_M = 0.001

_NGRAM: dict[str, Any] = {
    "tokenizer": {"name_ngram": {"type": "ngram", "min_gram": 1, "max_gram": 2}},
    "analyzer": {"name_ngram": {"type": "custom", "tokenizer": "name_ngram",
                                "filter": ["lowercase"]}},
}
_NORI = {"analyzer": {"name_korean": {"type": "custom", "tokenizer": "nori_tokenizer",
                                      "filter": ["lowercase"]}}}
_FALLBACK = {"analyzer": {"name_korean": {"type": "cjk"}}}


def _mappings() -> dict[str, Any]:
    return {
        "properties": {
            "center_id": {"type": "long"},
            "version": {"type": "long"},
            "name": {"type": "text", "analyzer": "name_korean",
                     "fields": {"ngram": {"type": "text", "analyzer": "name_ngram"}}},
            "name_lower": {"type": "keyword"},
            "address": {"type": "text", "analyzer": "name_korean"},
            "location": {"type": "geo_point"},
            "latitude": {"type": "double", "index": False},
            "longitude": {"type": "double", "index": False},
            "sports": {"type": "keyword"},
        }
    }


def _analysis(korean: dict[str, Any]) -> dict[str, Any]:
    return {"analysis": {"tokenizer": _NGRAM["tokenizer"],
                         "analyzer": {**_NGRAM["analyzer"], **korean["analyzer"]}}}


CONFLICT = 409


def _body(document: CenterDocument) -> dict[str, Any]:
    return {
        "center_id": document.id, "version": document.version, "name": document.name,
        "name_lower": document.name.casefold(), "address": document.address,
        "location": {"lat": document.latitude, "lon": document.longitude},
        "latitude": document.latitude, "longitude": document.longitude,
        "sports": document.sports,
    }


def _document(source: dict[str, Any]) -> CenterDocument:
    return CenterDocument(
        id=source["center_id"], version=source["version"], name=source["name"],
        address=source["address"], latitude=source["latitude"], longitude=source["longitude"],
        sports=source["sports"],
    )


def _status(error: Any) -> int:
    """The HTTP status of one failed bulk item ({"index": {"status": ...}})."""
    return int(next(iter(error.values())).get("status", 0))


def _escape_wildcard(term: str) -> str:
    return "".join("\\" + char if char in "*?\\" else char for char in term)


class ElasticsearchIndex:
    earth_radius_m = LUCENE_EARTH_RADIUS_M

    def __init__(self, *, client: AsyncElasticsearch, index: str, refresh: bool = True) -> None:
        self._client = client
        self._index = index
        # "wait_for": a write is searchable when the actor finishes. Reindexing
        # turns it off and refreshes once at the end.
        self._refresh: str | bool = "wait_for" if refresh else False

    async def ensure(self) -> None:
        """The index name is an alias of a physical index (``<name>-<time>``),
        so a rebuild can swap a new one in; one made by an older release
        under the plain name is used as it is until the next rebuild."""
        if await self._client.indices.exists(index=self._index):
            return
        physical = await self._new_physical()
        await self._client.indices.update_aliases(actions=[
            # Another process ensuring at the same moment: the last one wins.
            {"remove": {"index": f"{self._index}-*", "alias": self._index}},
            {"add": {"index": physical, "alias": self._index}},
        ])

    async def _new_physical(self) -> str:
        physical = f"{self._index}-{time.time_ns()}"
        try:
            await self._create(physical, _NORI)
        except BadRequestError:
            log.info("no nori analyzer on this cluster; names use the cjk fallback")
            await self._create(physical, _FALLBACK)
        return physical

    async def _create(self, name: str, korean: dict[str, Any]) -> None:
        try:
            await self._client.indices.create(
                index=name, settings=_analysis(korean), mappings=_mappings()
            )
        except BadRequestError as exc:
            if exc.error == "resource_already_exists_exception":
                return
            raise

    async def _physical(self) -> list[str]:
        """The indices the name's alias points to; [] when it names a plain index or nothing."""
        if not await self._client.indices.exists_alias(name=self._index):
            return []
        return list((await self._client.indices.get_alias(name=self._index)).body)

    async def rebuild(self, fill: Fill) -> int:
        """Into a new physical index while searches and writes go to the old
        one; then the alias moves to it in one step and the old one goes."""
        physical = await self._new_physical()
        indexed = await fill(ElasticsearchIndex(client=self._client, index=physical,
                                                refresh=False))
        await self._client.indices.refresh(index=physical)
        old = await self._physical()
        plain = not old and await self._client.indices.exists(index=self._index)
        swap: list[dict[str, Any]] = [{"remove": {"index": name, "alias": self._index}}
                                      for name in old]
        if plain:
            swap.append({"remove_index": {"index": self._index}})
        swap.append({"add": {"index": physical, "alias": self._index}})
        await self._client.indices.update_aliases(actions=swap)
        for name in old:
            await self._client.indices.delete(index=name, ignore_unavailable=True)
        return indexed

    async def put(self, document: CenterDocument) -> None:
        try:
            await self._client.index(
                index=self._index, id=str(document.id), document=_body(document),
                version=document.version, version_type="external", refresh=self._refresh,
            )
        except ConflictError:
            log.info("center %s: a newer version is indexed", document.id)

    async def put_many(self, documents: Sequence[CenterDocument]) -> None:
        actions = [
            {"_op_type": "index", "_index": self._index, "_id": str(document.id),
             "version": document.version, "version_type": "external",
             "_source": _body(document)}
            for document in documents
        ]
        # Conflicts mean a newer version is there already: not an error.
        _, errors = await async_bulk(self._client, actions, raise_on_error=False,
                                     refresh=self._refresh)
        failures = [error for error in cast(list[Any], errors) if _status(error) != CONFLICT]
        if failures:
            raise RuntimeError(f"bulk indexing failed for {len(failures)} centers: {failures[:3]}")

    async def remove(self, center_id: int, *, version: int) -> None:
        try:
            await self._client.delete(
                index=self._index, id=str(center_id), version=version,
                version_type="external", refresh=self._refresh,
            )
        except (ConflictError, NotFoundError):
            log.info("center %s: already removed or newer", center_id)

    async def search(self, query: CenterQuery) -> SearchPage:
        point = {"lat": query.latitude, "lon": query.longitude}
        # Elasticsearch refuses a zero distance; a millimetre keeps "at this very point".
        radius_m = max(query.radius_m, MIN_RADIUS_M)
        filters: list[dict[str, Any]] = [
            {"geo_distance": {"distance": f"{radius_m}m", "location": point}}
        ]
        if query.sport:
            filters.append({"term": {"sports": query.sport}})
        for term in query.terms:
            filters.append({"match": {"name.ngram": {"query": term, "operator": "and"}}})
            filters.append({"wildcard": {"name_lower": {"value": f"*{_escape_wildcard(term)}*"}}})
        options: dict[str, Any] = {}
        if query.after is not None:
            options["search_after"] = [query.after.distance_m, query.after.center_id]
        response = await self._client.search(
            index=self._index,
            query={"bool": {"filter": filters}},
            sort=[
                {"_geo_distance": {"location": point, "order": "asc", "unit": "m",
                                   "distance_type": "arc"}},
                {"center_id": "asc"},
            ],
            size=query.limit + 1,
            source_excludes=["location", "name_lower"],
            **options,
        )
        hits = [
            CenterHit(hit["_source"]["center_id"], float(hit["sort"][0]),
                      summary_json(_document(hit["_source"])).encode())
            for hit in response["hits"]["hits"]
        ]
        return page_from_sorted(hits, query.limit)

    async def refresh(self) -> None:
        await self._client.indices.refresh(index=self._index)

    async def clear(self) -> None:
        for name in await self._physical() or [self._index]:
            await self._client.indices.delete(index=name, ignore_unavailable=True)
        await self.ensure()

    async def close(self) -> None:
        await self._client.close()

