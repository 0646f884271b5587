"""Center search on Redis GEO (GEOSEARCH), the default backend.

One geo set for all centers and one per sport (so a sport filter never scans
other sports), and a hash of indexed versions that also serves as tombstones
for removed centers. A geo member is the center's id and the summary search
results show (``"<id>:<summary json>"``), so a search is GEOSEARCH alone, with
nothing to look up per hit; a hash from id to member lets a change remove the
old member. Writes are Lua scripts: the version check and every set change
happen atomically. All keys share one hash tag, so the scripts keep working on
a Redis Cluster.

Redis GEO covers latitudes ±85.05112878° only (web Mercator): centers beyond
are not indexed here, and queries from there are refused as invalid input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from fitnus.errors import InvalidInput
from fitnus.pubsub import SUBSCRIBE_TIMEOUT_SECONDS, listen_forever
from fitnus.redis_client import RedisClient
from fitnus.search.index import (
    MAX_RADIUS_M,
    CenterDocument,
    CenterHit,
    CenterQuery,
    Fill,
    SearchPage,
    name_matches,
    page_from_sorted,
    summary_json,
)
from fitnus.search.nearby import EARTH_RADIUS_M, FILL_COUNT, Candidate, NearbyCache, place

log = logging.getLogger(__name__)

REDIS_EARTH_RADIUS_M = EARTH_RADIUS_M
MAX_GEO_LATITUDE = 85.05112878
FIRST_FETCH_FACTOR = 2
# Where the widening search starts: ~40 centers in the densest districts.
FIRST_RING_M = 500

# Removes the center's current member from every set it is in.
_FORGET = """
local function forget(members, geo, id)
    local previous = redis.call('HGET', members, id)
    if not previous then return end
    local summary = cjson.decode(string.sub(previous, string.find(previous, ':', 1, true) + 1))
    for _, sport in ipairs(summary['sports']) do
        redis.call('ZREM', geo .. ':' .. sport, previous)
    end
    redis.call('ZREM', geo, previous)
    redis.call('HDEL', members, id)
end
"""

# KEYS: versions, members, all-centers geo set. ARGV: id, version, lng, lat, member, sports json
_PUT = _FORGET + """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current >= tonumber(ARGV[2]) then return 0 end
forget(KEYS[2], KEYS[3], ARGV[1])
redis.call('GEOADD', KEYS[3], ARGV[3], ARGV[4], ARGV[5])
for _, sport in ipairs(cjson.decode(ARGV[6])) do
    redis.call('GEOADD', KEYS[3] .. ':' .. sport, ARGV[3], ARGV[4], ARGV[5])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: versions, members, all-centers geo set. ARGV: id, version
_REMOVE = _FORGET + """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current >= tonumber(ARGV[2]) then return 0 end
forget(KEYS[2], KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# The COUNT nearest members with their distances, in one round trip.
# GEOSEARCH costs Redis time in proportion to the members in the geohash cells
# around the circle, whatever COUNT says, so the search starts on a small
# circle and widens it only while it holds fewer than COUNT members: the COUNT
# nearest inside a smaller circle are the COUNT nearest of the whole circle.
# Dense districts are answered from a few hundred metres.
# KEYS: geo set. ARGV: lng, lat, radius_m, count, first radius_m, and '1' for the
# members with their coordinates instead of their distances
_NEAREST = """
local radius, count = tonumber(ARGV[3]), tonumber(ARGV[4])
local ring = math.min(tonumber(ARGV[5]), radius)
local coordinates = ARGV[6] == '1'
while true do
    local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2],
                             'BYRADIUS', ring, 'm', 'ASC', 'COUNT', count,
                             coordinates and 'WITHCOORD' or 'WITHDIST')
    if #found >= count or ring >= radius then return found end
    -- Widen by the density seen so far, at least 1.5 and at most 4 times.
    local factor = 1.2 * math.sqrt(count / math.max(#found, 1))
    ring = math.min(radius, ring * math.max(1.5, math.min(4, factor)))
end
"""


# A change to centers, published by whoever made it: a JSON list of
# [id, longitude, latitude] (null, null once removed), or "*" for all.
EVERYTHING_CHANGED = b"*"


class RedisGeoIndex:
    earth_radius_m = REDIS_EARTH_RADIUS_M

    def __init__(
        self, *, redis: RedisClient, prefix: str, cache_seconds: float = 0,
        cache_at_first_ask: bool = False,
    ) -> None:
        """``cache_seconds`` above 0 answers popular searches in this process
        (fitnus.search.nearby) for that long, listening for changes;
        ``cache_at_first_ask`` holds every place searched as popular."""
        self._redis = redis
        tag = f"{prefix}{{centers}}"
        self._versions = f"{tag}:versions"
        self._members = f"{tag}:members"
        self._geo = f"{tag}:geo"
        self._changes = f"{tag}:changed"
        self._put = redis.register_script(_PUT)
        self._remove = redis.register_script(_REMOVE)
        self._nearest = redis.register_script(_NEAREST)
        self._nearby = NearbyCache(
            ttl_seconds=cache_seconds, fill_at_first_ask=cache_at_first_ask,
        ) if cache_seconds > 0 else None
        self._listener: asyncio.Task[None] | None = None

    def _geo_key(self, sport: str | None) -> str:
        return f"{self._geo}:{sport}" if sport else self._geo

    async def ensure(self) -> None:
        """Redis makes keys on first write; a cache starts listening for changes."""
        if self._nearby is None or self._listener is not None:
            return
        subscribed = asyncio.Event()

        def on_subscribed() -> None:
            assert self._nearby is not None
            self._nearby.clear()  # changes may have gone unheard meanwhile
            subscribed.set()

        self._listener = asyncio.create_task(listen_forever(
            self._redis, self._changes, on_message=self._heard, on_subscribed=on_subscribed,
        ), name=f"listener:{self._changes}")
        try:
            await asyncio.wait_for(subscribed.wait(), timeout=SUBSCRIBE_TIMEOUT_SECONDS)
        except TimeoutError:
            await self.close()
            raise

    def _heard(self, message: dict[str, Any]) -> None:
        assert self._nearby is not None
        data = message.get("data")
        try:
            changes = [] if data == EVERYTHING_CHANGED else [
                (int(center_id), None if longitude is None else place(longitude, latitude))
                for center_id, longitude, latitude in json.loads(data)  # type: ignore[arg-type]
            ]
        except (TypeError, ValueError):
            log.warning("a change message we cannot read: %r; forgetting everything", data)
            changes = []
        if changes:
            self._nearby.forget(changes)
        else:
            self._nearby.clear()

    async def _changed(self, changes: list[tuple[int, float | None, float | None]]) -> None:
        """Tell every process's cache, this one's at once."""
        if not changes:
            return
        message = json.dumps(changes).encode()
        if self._nearby is not None:
            self._heard({"data": message})
        await self._redis.publish(self._changes, message)

    async def put(self, document: CenterDocument) -> None:
        await self.put_many([document])

    async def put_many(self, documents: Sequence[CenterDocument]) -> None:
        changes: list[tuple[int, float | None, float | None]] = []
        # Loaded first, then called by their digests: a cluster's pipeline
        # does not load the scripts it runs, as a single server's does.
        for script in (_PUT, _REMOVE):
            await self._redis.script_load(script)
        keys = [self._versions, self._members, self._geo]
        async with self._redis.pipeline(transaction=False) as pipe:
            for document in documents:
                if abs(document.latitude) > MAX_GEO_LATITUDE:
                    log.warning("center %s lies beyond Redis GEO's latitudes; not indexed",
                                document.id)
                    pipe.evalsha(self._remove.sha, len(keys), *keys, document.id,
                                 document.version)
                    changes.append((document.id, None, None))
                    continue
                pipe.evalsha(self._put.sha, len(keys), *keys, document.id, document.version,
                             document.longitude, document.latitude,
                             f"{document.id}:{summary_json(document)}",
                             json.dumps(document.sports))
                changes.append((document.id, document.longitude, document.latitude))
            await pipe.execute()
        # Every change tried, applied now or before: a retry after a lost
        # reply finds its version already there, and must still be heard.
        await self._changed(changes)

    async def remove(self, center_id: int, *, version: int) -> None:
        await self._remove(keys=[self._versions, self._members, self._geo],
                           args=[center_id, version])
        await self._changed([(center_id, None, None)])

    async def search(self, query: CenterQuery) -> SearchPage:
        if abs(query.latitude) > MAX_GEO_LATITUDE:
            raise InvalidInput(
                f"the redis search backend covers latitudes up to ±{MAX_GEO_LATITUDE}",
                code="latitude_out_of_range",
            )
        if self._nearby is not None:
            page = await self._from_nearby(self._nearby, query)
            if page is not None:
                return page
        wanted = query.limit + 1
        # One more than wanted: the cut below drops the farthest distance.
        count = wanted + 1 if query.after is None and not query.terms else (
            wanted * FIRST_FETCH_FACTOR)
        while True:
            reply = await self._nearest(
                keys=[self._geo_key(query.sport)],
                args=[query.longitude, query.latitude, query.radius_m, count, FIRST_RING_M],
            )
            fetched = len(reply)
            exhausted = fetched < count
            hits = self._eligible(reply, query)
            if not exhausted and hits:
                # A COUNT cut can split equal distances: keep only what lies
                # strictly before the farthest fetched distance.
                boundary = float(reply[-1][1])
                hits = [hit for hit in hits if hit.distance_m < boundary]
            if exhausted or len(hits) >= wanted:
                return page_from_sorted(hits, query.limit)
            count *= 4

    async def _from_nearby(self, nearby: NearbyCache, query: CenterQuery) -> SearchPage | None:
        key, longitude, latitude = nearby.cell(query)
        if abs(latitude) > MAX_GEO_LATITUDE or abs(longitude) > 180:
            return None  # a cell at the edge of the map: Redis answers
        entry = nearby.fresh(key)
        if entry is None:
            if not nearby.popular(key):
                return None
            generation = nearby.generation
            reply = await self._nearest(
                keys=[self._geo_key(query.sport)],
                args=[longitude, latitude, MAX_RADIUS_M, FILL_COUNT, FIRST_RING_M, 1],
            )
            candidates = []
            for member, (member_longitude, member_latitude) in reply:
                center_id, summary = member.split(b":", 1)
                candidates.append(Candidate(
                    int(center_id), place(float(member_longitude), float(member_latitude)),
                    summary))
            entry = nearby.keep(key, longitude=longitude, latitude=latitude,
                                radius_m=MAX_RADIUS_M, candidates=candidates,
                                generation=generation)
        return nearby.answer(entry, query)

    @staticmethod
    def _eligible(reply: list[list[bytes]], query: CenterQuery) -> list[CenterHit]:
        terms = query.terms
        after = query.after
        hits = []
        for member, distance in reply:
            center_id, summary = member.split(b":", 1)
            hit = CenterHit(int(center_id), float(distance), summary)
            if terms and not name_matches(hit.summary()["name"], terms):
                continue
            if after is not None and (hit.distance_m, hit.center_id) <= (
                after.distance_m, after.center_id
            ):
                continue
            hits.append(hit)
        hits.sort(key=lambda hit: (hit.distance_m, hit.center_id))
        return hits

    async def clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=f"{self._geo}*")]
        await self._redis.delete(self._versions, self._members, *keys)
        if self._nearby is not None:
            self._nearby.clear()
        await self._redis.publish(self._changes, EVERYTHING_CHANGED)

    async def rebuild(self, fill: Fill) -> int:
        """In place: searches find fewer centers while it runs (the local backend)."""
        await self.clear()
        return await fill(self)

    async def close(self) -> None:
        """Stops listening; the Redis client belongs to the caller."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
