"""Center search on Redis GEO (GEOSEARCH), the default backend.

One geo set for all centers and one per sport (so a sport filter never scans
other sports), a hash of documents, and a hash of indexed versions that also
serves as tombstones for removed centers. Writes are Lua scripts: the version
check and every set change happen atomically. All keys share one hash tag, so
the scripts keep working on a Redis Cluster.

Redis GEO covers latitudes ±85.05112878° only (web Mercator): centers beyond
are not indexed here, and queries from there are refused as invalid input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict

from redis.asyncio import Redis

from fitnus.errors import InvalidInput
from fitnus.search.index import (
    CenterDocument,
    CenterHit,
    CenterQuery,
    SearchPage,
    name_matches,
    page_from_sorted,
)

log = logging.getLogger(__name__)

REDIS_EARTH_RADIUS_M = 6372797.560856  # src/geohash_helper.c
MAX_GEO_LATITUDE = 85.05112878
FIRST_FETCH_FACTOR = 2

# KEYS: versions, docs, all-centers geo set. ARGV: id, version, lng, lat, doc, sports json
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current >= tonumber(ARGV[2]) then return 0 end
local previous = redis.call('HGET', KEYS[2], ARGV[1])
if previous then
    for _, sport in ipairs(cjson.decode(previous)['sports']) do
        redis.call('ZREM', KEYS[3] .. ':' .. sport, ARGV[1])
    end
end
redis.call('GEOADD', KEYS[3], ARGV[3], ARGV[4], ARGV[1])
for _, sport in ipairs(cjson.decode(ARGV[6])) do
    redis.call('GEOADD', KEYS[3] .. ':' .. sport, ARGV[3], ARGV[4], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: versions, docs, all-centers geo set. ARGV: id, version
_REMOVE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current >= tonumber(ARGV[2]) then return 0 end
local previous = redis.call('HGET', KEYS[2], ARGV[1])
if previous then
    for _, sport in ipairs(cjson.decode(previous)['sports']) do
        redis.call('ZREM', KEYS[3] .. ':' .. sport, ARGV[1])
    end
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# One round trip per fetch: the nearest members with distances, and their documents.
# KEYS: geo set, docs. ARGV: lng, lat, radius_m, count
_NEAREST = """
local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2],
                         'BYRADIUS', ARGV[3], 'm', 'ASC', 'COUNT', ARGV[4], 'WITHDIST')
if #found == 0 then return {} end
local ids = {}
for index, member in ipairs(found) do ids[index] = member[1] end
local docs = redis.call('HMGET', KEYS[2], unpack(ids))
local reply = {}
for index, member in ipairs(found) do
    reply[#reply + 1] = member[2]
    reply[#reply + 1] = docs[index]
end
return reply
"""


class RedisGeoIndex:
    earth_radius_m = REDIS_EARTH_RADIUS_M

    def __init__(self, *, redis: Redis, prefix: str) -> None:
        self._redis = redis
        tag = f"{prefix}{{centers}}"
        self._versions = f"{tag}:versions"
        self._docs = f"{tag}:docs"
        self._geo = f"{tag}:geo"
        self._put = redis.register_script(_PUT)
        self._remove = redis.register_script(_REMOVE)
        self._nearest = redis.register_script(_NEAREST)

    def _geo_key(self, sport: str | None) -> str:
        return f"{self._geo}:{sport}" if sport else self._geo

    async def ensure(self) -> None:
        """Nothing to create: Redis makes keys on first write."""

    async def put(self, document: CenterDocument) -> None:
        await self.put_many([document])

    async def put_many(self, documents: Sequence[CenterDocument]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for document in documents:
                if abs(document.latitude) > MAX_GEO_LATITUDE:
                    log.warning("center %s lies beyond Redis GEO's latitudes; not indexed",
                                document.id)
                    await self._remove(keys=[self._versions, self._docs, self._geo],
                                       args=[document.id, document.version], client=pipe)
                    continue
                await self._put(
                    keys=[self._versions, self._docs, self._geo],
                    args=[document.id, document.version, document.longitude, document.latitude,
                          json.dumps(asdict(document), ensure_ascii=False),
                          json.dumps(document.sports)],
                    client=pipe,
                )
            await pipe.execute()

    async def remove(self, center_id: int, *, version: int) -> None:
        await self._remove(keys=[self._versions, self._docs, self._geo], args=[center_id, version])

    async def search(self, query: CenterQuery) -> SearchPage:
        if abs(query.latitude) > MAX_GEO_LATITUDE:
            raise InvalidInput(
                f"the redis search backend covers latitudes up to ±{MAX_GEO_LATITUDE}",
                code="latitude_out_of_range",
            )
        wanted = query.limit + 1
        count = wanted * FIRST_FETCH_FACTOR
        while True:
            reply = await self._nearest(
                keys=[self._geo_key(query.sport), self._docs],
                args=[query.longitude, query.latitude, query.radius_m, count],
            )
            fetched = len(reply) // 2
            exhausted = fetched < count
            hits = self._eligible(reply, query)
            if not exhausted and hits:
                # A COUNT cut can split equal distances: keep only what lies
                # strictly before the farthest fetched distance.
                boundary = float(reply[-2])
                hits = [hit for hit in hits if hit.distance_m < boundary]
            if exhausted or len(hits) >= wanted:
                return page_from_sorted(hits, query.limit)
            count *= 4

    @staticmethod
    def _eligible(reply: list[bytes], query: CenterQuery) -> list[CenterHit]:
        terms = query.terms
        hits = []
        for index in range(0, len(reply), 2):
            document = CenterDocument(**json.loads(reply[index + 1]))
            hit = CenterHit(document, float(reply[index]))
            if terms and not name_matches(document.name, terms):
                continue
            if query.after is not None and (hit.distance_m, document.id) <= (
                query.after.distance_m, query.after.center_id
            ):
                continue
            hits.append(hit)
        hits.sort(key=lambda hit: (hit.distance_m, hit.document.id))
        return hits

    async def clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=f"{self._geo}*")]
        await self._redis.delete(self._versions, self._docs, *keys)

    async def close(self) -> None:
        """The Redis client belongs to the caller."""
