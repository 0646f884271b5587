"""One contract, two backends: every case runs on Redis GEO and on the
Elasticsearch backend (against osmem-server)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from fitnus.config import Settings
from fitnus.errors import InvalidInput
from fitnus.search.elastic import ElasticsearchIndex
from fitnus.search.index import CenterDocument, CenterIndex, CenterQuery, SearchCursor
from fitnus.search.redis_geo import MAX_GEO_LATITUDE, RedisGeoIndex
from tests.geodesy import destination
from tests.search_servers import open_test_center_index

GANGNAM = (37.4979, 127.0276)
_ids = itertools.count(1)


# "redis, cached": as a web process serves it, answering from its cache of
# places searched lately (fitnus.search.nearby) wherever that is exact, each
# place cached from its first search.
@pytest.fixture(params=["redis", "redis, cached", "elasticsearch"])
async def index(
    request: pytest.FixtureRequest, settings: Settings, redis: Redis, osmem_url: str
) -> AsyncIterator[CenterIndex]:
    isolated = uuid.uuid4().hex[:10]
    backend, _, cached = request.param.partition(", ")
    backend_settings = replace(
        settings, search_backend=backend, elasticsearch_url=osmem_url,
        elasticsearch_index=f"centers-{isolated}",
        redis_key_prefix=f"{settings.redis_key_prefix}{isolated}:",
    )
    index = RedisGeoIndex(redis=redis, prefix=backend_settings.redis_key_prefix,
                          cache_seconds=60, cache_at_first_ask=True,
                          ) if cached else open_test_center_index(backend_settings, redis)
    await index.ensure()
    yield index
    await index.clear()
    await index.close()


def center(
    *, at: tuple[float, float], name: str = "센터", sports: list[str] | None = None,
    version: int = 1, center_id: int | None = None,
) -> CenterDocument:
    return CenterDocument(
        id=center_id or next(_ids), version=version, name=name, address="서울 강남구",
        latitude=at[0], longitude=at[1], sports=sports or ["gym"],
    )


def around(index: CenterIndex, distance_m: float, bearing_deg: float = 90) -> tuple[float, float]:
    return destination(*GANGNAM, distance_m=distance_m, bearing_deg=bearing_deg,
                       radius_m=index.earth_radius_m)


async def found(index: CenterIndex, **query: Any) -> list[int]:
    page = await index.search(CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1], **query))
    return [hit.center_id for hit in page.hits]


async def test_radius_edges_2999_in_3001_out(index: CenterIndex) -> None:
    inside = center(at=around(index, 2_999))
    outside = center(at=around(index, 3_001, bearing_deg=180))
    for document in (inside, outside):
        await index.put(document)
    assert await found(index) == [inside.id]


async def test_nearest_first_with_distances(index: CenterIndex) -> None:
    documents = [center(at=around(index, distance, bearing)) for distance, bearing in
                 ((1_500, 10), (300, 200), (900, 300), (2_200, 45))]
    for document in documents:
        await index.put(document)
    page = await index.search(CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1]))
    assert [round(hit.distance_m) for hit in page.hits] == [300, 900, 1_500, 2_200]
    assert [hit.center_id for hit in page.hits] == [
        documents[1].id, documents[2].id, documents[0].id, documents[3].id
    ]


async def test_nearest_beyond_a_crowd_just_outside_a_small_circle(index: CenterIndex) -> None:
    # The Redis backend widens its search from a small circle: what it finds
    # first must not hide nearer centers, nor a crowd farther out the near ones.
    near = [center(at=around(index, 100 + 10 * n, bearing_deg=n * 40)) for n in range(3)]
    crowd = [center(at=around(index, 1_200 + n, bearing_deg=n * 7 % 360)) for n in range(40)]
    far = center(at=around(index, 2_900, bearing_deg=123))
    for document in [*crowd, far, *near]:
        await index.put(document)
    assert await found(index, limit=5) == [*(d.id for d in near), crowd[0].id, crowd[1].id]
    everything = await found(index, limit=100)
    assert everything == [*(d.id for d in near), *(d.id for d in crowd), far.id]


async def test_sport_and_name_filters_combine(index: CenterIndex) -> None:
    yoga_gangnam = center(at=around(index, 100), name="강남 요가 스튜디오", sports=["yoga"])
    gym_gangnam = center(at=around(index, 200), name="강남피트니스", sports=["gym", "yoga"])
    yoga_elsewhere = center(at=around(index, 300), name="서초 요가원", sports=["yoga"])
    for document in (yoga_gangnam, gym_gangnam, yoga_elsewhere):
        await index.put(document)
    assert await found(index, sport="yoga") == [yoga_gangnam.id, gym_gangnam.id, yoga_elsewhere.id]
    assert await found(index, text="강남") == [yoga_gangnam.id, gym_gangnam.id]
    assert await found(index, sport="yoga", text="요가") == [yoga_gangnam.id, yoga_elsewhere.id]
    assert await found(index, sport="gym", text="서초") == []


async def test_korean_name_search_matches_inside_words(index: CenterIndex) -> None:
    fitness = center(at=around(index, 100), name="강남피트니스센터")
    climbing = center(at=around(index, 200), name="더클라임 Climbing 강남점")
    for document in (fitness, climbing):
        await index.put(document)
    assert await found(index, text="피트니스") == [fitness.id]
    assert await found(index, text="클라임") == [climbing.id]
    assert await found(index, text="CLIMBING") == [climbing.id]
    assert await found(index, text="강남 센터") == [fitness.id]
    assert await found(index, text="강피") == []


async def test_pages_have_no_duplicates_or_gaps(index: CenterIndex) -> None:
    documents = [center(at=around(index, 50 + 37 * n, bearing_deg=n * 29 % 360))
                 for n in range(23)]
    # Two centers at one point: equal distances must still page cleanly.
    twin = center(at=(documents[5].latitude, documents[5].longitude))
    for document in [*documents, twin]:
        await index.put(document)
    seen: list[int] = []
    after: SearchCursor | None = None
    while True:
        page = await index.search(CenterQuery(
            latitude=GANGNAM[0], longitude=GANGNAM[1], limit=5, after=after
        ))
        seen += [hit.center_id for hit in page.hits]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(document.id for document in [*documents, twin])
    assert len(seen) == len(set(seen))


async def test_removed_centers_vanish_and_changes_move_them(index: CenterIndex) -> None:
    moving = center(at=around(index, 500), name="이사 가는 센터")
    closing = center(at=around(index, 600))
    for document in (moving, closing):
        await index.put(document)
    await index.remove(closing.id, version=2)
    await index.put(replace(moving, version=2, latitude=0.0, longitude=0.0))
    assert await found(index) == []


async def test_an_older_version_never_replaces_a_newer_one(index: CenterIndex) -> None:
    newer = center(at=around(index, 500), name="새 이름", version=3)
    await index.put(newer)
    await index.put(replace(newer, version=2, name="옛 이름"))
    await index.remove(newer.id, version=1)
    page = await index.search(CenterQuery(latitude=GANGNAM[0], longitude=GANGNAM[1]))
    assert [hit.summary()["name"] for hit in page.hits] == ["새 이름"]
    await index.remove(newer.id, version=4)
    await index.put(replace(newer, version=3))
    assert await found(index) == []


async def test_a_sport_change_leaves_the_old_sport(index: CenterIndex) -> None:
    document = center(at=around(index, 100), sports=["boxing"])
    await index.put(document)
    await index.put(replace(document, version=2, sports=["tennis"]))
    assert await found(index, sport="boxing") == []
    assert await found(index, sport="tennis") == [document.id]


@pytest.mark.parametrize("radius_m", [0, 50_000])
async def test_radius_limits_are_accepted(index: CenterIndex, radius_m: int) -> None:
    near = center(at=around(index, 10_000))
    await index.put(near)
    assert await found(index, radius_m=radius_m) == ([] if radius_m == 0 else [near.id])


@pytest.mark.parametrize(("latitude", "longitude"), [(90, 0), (-90, 0), (0, 180), (0, -180)])
async def test_points_at_the_limits_are_answered_or_refused_cleanly(
    index: CenterIndex, latitude: float, longitude: float
) -> None:
    query = CenterQuery(latitude=latitude, longitude=longitude, radius_m=50_000)
    if isinstance(index, RedisGeoIndex) and abs(latitude) > MAX_GEO_LATITUDE:
        with pytest.raises(InvalidInput) as refused:
            await index.search(query)
        assert refused.value.code == "latitude_out_of_range"
    else:
        assert (await index.search(query)).hits == []


async def test_a_rebuild_serves_the_old_index_until_the_new_one_is_whole(
    index: CenterIndex,
) -> None:
    kept, gone, added = (center(at=around(index, distance)) for distance in (500, 700, 900))
    await index.put(kept)
    await index.put(gone)
    seen_while_building: list[list[int]] = []

    async def fill(target: CenterIndex) -> int:
        await target.put_many([kept, added])
        seen_while_building.append(await found(index))
        return 2

    assert await index.rebuild(fill) == 2
    assert await found(index) == [kept.id, added.id]
    await index.put(replace(gone, version=2))  # writes go to the new one
    assert await found(index) == [kept.id, gone.id, added.id]
    if isinstance(index, ElasticsearchIndex):
        # Elasticsearch answered from the old index all along, and keeps one index.
        assert seen_while_building == [[kept.id, gone.id]]
        await index.rebuild(fill)
        assert len(await index._physical()) == 1
        assert await found(index) == [kept.id, added.id]


async def test_an_index_of_an_older_release_becomes_an_alias_at_its_first_rebuild(
    settings: Settings, redis: Redis, osmem_url: str,
) -> None:
    name = f"centers-plain-{uuid.uuid4().hex[:8]}"
    index = open_test_center_index(replace(
        settings, search_backend="elasticsearch", elasticsearch_url=osmem_url,
        elasticsearch_index=name), redis)
    assert isinstance(index, ElasticsearchIndex)
    try:
        await index._client.indices.create(index=name)  # as releases before aliases made it
        await index.ensure()
        old = center(at=GANGNAM)
        await index.put(old)

        async def fill(target: CenterIndex) -> int:
            await target.put_many([old])
            return 1

        await index.rebuild(fill)
        assert len(await index._physical()) == 1
        assert await found(index) == [old.id]
    finally:
        await index.clear()
        await index.close()
