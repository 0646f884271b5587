"""The web process's cache of places searched lately (fitnus.search.nearby)
answers exactly what Redis answers, and answers it from memory."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from fitnus.search.index import CenterDocument, CenterQuery, SearchCursor, SearchPage
from fitnus.search.nearby import FILL_COUNT, Candidate, NearbyCache, place
from fitnus.search.redis_geo import RedisGeoIndex
from tests.conftest import eventually

GANGNAM = (37.4979, 127.0276)
NAMES = ("강남 요가", "역삼 피트니스", "선릉 클라이밍", "삼성 복싱", "논현 필라테스")
SPORTS = ("gym", "yoga", "boxing")


@dataclass
class Pair:
    plain: RedisGeoIndex
    cached: RedisGeoIndex
    redis: Redis
    prefix: str


@pytest.fixture
async def pair(redis: Redis) -> AsyncIterator[Pair]:
    """The same index twice: as workers use it, and as a web process serves it."""
    prefix = f"fitnus-test-cache-{uuid.uuid4().hex[:10]}:"
    plain = RedisGeoIndex(redis=redis, prefix=prefix)
    cached = RedisGeoIndex(redis=redis, prefix=prefix, cache_seconds=60,
                           cache_at_first_ask=True)
    await cached.ensure()
    yield Pair(plain, cached, redis, prefix)
    await cached.close()
    await plain.clear()


def crowd(rng: random.Random, count: int) -> list[CenterDocument]:
    """A dense district: ``count`` centers in about 2 × 2 km, a few pairs at one point."""
    documents = []
    for number in range(1, count + 1):
        if number % 25 == 0:
            twin = documents[-1]
            latitude, longitude = twin.latitude, twin.longitude
        else:
            latitude = GANGNAM[0] + rng.uniform(-0.009, 0.009)
            longitude = GANGNAM[1] + rng.uniform(-0.011, 0.011)
        documents.append(CenterDocument(
            id=number, version=1, name=rng.choice(NAMES), address="서울",
            latitude=latitude, longitude=longitude, sports=rng.sample(SPORTS, 2),
        ))
    return documents


def random_query(rng: random.Random) -> CenterQuery:
    return CenterQuery(
        latitude=GANGNAM[0] + rng.uniform(-0.012, 0.012),
        longitude=GANGNAM[1] + rng.uniform(-0.015, 0.015),
        radius_m=rng.choice([0, 50, 300, 800, 1_500, 3_000, 50_000]),
        sport=rng.choice([None, None, *SPORTS]),
        text=rng.choice([None, None, None, "요가", "피트"]),
        limit=rng.choice([1, 5, 20, 20, 50]),
    )


def shown(page: SearchPage) -> tuple[list[tuple[int, float]], SearchCursor | None]:
    return [(hit.center_id, hit.distance_m) for hit in page.hits], page.next_cursor


async def test_cached_pages_are_redis_pages_hit_for_hit(pair: Pair) -> None:
    rng = random.Random(20261204)
    await pair.plain.put_many(crowd(rng, 700))
    compared = 0
    for _ in range(150):
        query = random_query(rng)
        for _page in range(3):  # and the pages after it, each from its cursor
            plain, cached = await pair.plain.search(query), await pair.cached.search(query)
            assert shown(cached) == shown(plain), query
            compared += 1
            if plain.next_cursor is None:
                break
            query = CenterQuery(**{**query.__dict__, "after": plain.next_cursor})
    assert compared > 200


async def test_the_cache_answers_from_memory_and_a_change_message_drops_it(pair: Pair) -> None:
    rng = random.Random(7)
    documents = crowd(rng, 300)
    nearby = pair.cached._nearby
    assert nearby is not None
    heard_before = nearby.generation
    await pair.plain.put_many(documents)

    async def heard() -> bool:
        return nearby.generation > heard_before

    await eventually(heard, deadline_seconds=1)
    query = CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1], radius_m=1_000)
    before = shown(await pair.cached.search(query))
    assert before[0]
    # Behind the index's back (no change message), Redis loses every center:
    geo_sets = [key async for key in pair.redis.scan_iter(match=f"{pair.prefix}*geo*")]
    await pair.redis.delete(*geo_sets)
    assert (await pair.plain.search(query)).hits == []
    assert shown(await pair.cached.search(query)) == before  # served from memory
    # A change (here the nearest center moved away) reaches the cache as a
    # message, and the next search asks Redis again.
    nearest = next(document for document in documents if document.id == before[0][0][0])
    await pair.plain.put(CenterDocument(**{**nearest.__dict__, "version": 2, "latitude": 35.0}))

    async def dropped() -> bool:
        return (await pair.cached.search(query)).hits == []

    await eventually(dropped, deadline_seconds=1)


def neighbourhood_of(cache: NearbyCache, candidates: list[Candidate], generation: int) -> None:
    query = CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1])
    key, longitude, latitude = cache.cell(query)
    cache.keep(key, longitude=longitude, latitude=latitude, radius_m=5_000,
               candidates=candidates, generation=generation)


def test_a_fill_that_began_before_a_change_is_not_kept() -> None:
    cache = NearbyCache(ttl_seconds=60)
    query = CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1])
    started = cache.generation
    cache.forget([(1, place(GANGNAM[1], GANGNAM[0]))])  # heard while the fill was in flight
    neighbourhood_of(cache, [Candidate(1, place(GANGNAM[1], GANGNAM[0]), b"{}")], started)
    assert cache.fresh(cache.cell(query)[0]) is None
    neighbourhood_of(cache, [Candidate(1, place(GANGNAM[1], GANGNAM[0]), b"{}")], cache.generation)
    assert cache.fresh(cache.cell(query)[0]) is not None


def test_entries_expire_and_changes_drop_the_ones_they_touch() -> None:
    now = [0.0]
    cache = NearbyCache(ttl_seconds=3, monotonic=lambda: now[0])
    key = cache.cell(CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1]))[0]
    near = Candidate(5, place(GANGNAM[1] + 0.001, GANGNAM[0]), b"{}")
    neighbourhood_of(cache, [near], cache.generation)
    cache.forget([(6, place(GANGNAM[1], GANGNAM[0] + 1.0))])  # another center, 111 km off
    assert cache.fresh(key) is not None
    cache.forget([(7, place(GANGNAM[1], GANGNAM[0] + 0.01))])  # a new one, inside its 5 km
    assert cache.fresh(key) is None
    neighbourhood_of(cache, [near], cache.generation)
    cache.forget([(5, None)])  # one it holds, removed
    assert cache.fresh(key) is None
    neighbourhood_of(cache, [near] * FILL_COUNT, cache.generation)
    now[0] = 3.0
    assert cache.fresh(key) is None


def test_a_place_is_cached_once_asked_for_thrice_while_an_entry_would_live() -> None:
    now = [0.0]
    cache = NearbyCache(ttl_seconds=3, monotonic=lambda: now[0])
    key = cache.cell(CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1]))[0]
    assert not cache.popular(key)
    now[0] = 2.0
    assert not cache.popular(key)
    now[0] = 2.9
    assert cache.popular(key)
    now[0] = 6.0  # the asks at 2.0 and 2.9 are too old by 5.5
    assert not cache.popular(key)
    assert not cache.popular(key)
    assert cache.popular(key)


async def test_a_message_it_cannot_read_empties_the_cache_and_it_goes_on_listening(
    pair: Pair,
) -> None:
    nearby = pair.cached._nearby
    assert nearby is not None
    documents = crowd(random.Random(3), 50)
    await pair.plain.put_many(documents)
    query = CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1], radius_m=1_000)

    async def cached() -> bool:
        await pair.cached.search(query)
        return nearby.fresh(nearby.cell(query)[0]) is not None

    await eventually(cached, deadline_seconds=1)
    await pair.redis.publish(pair.cached._changes, b"not a change")

    async def emptied() -> bool:
        return nearby.fresh(nearby.cell(query)[0]) is None

    await eventually(emptied, deadline_seconds=1)
    await eventually(cached, deadline_seconds=1)
    await pair.plain.put(CenterDocument(**{**documents[0].__dict__, "version": 2}))
    await eventually(emptied, deadline_seconds=1)  # still listening
