"""Search over HTTP: centers reach the index through the actor, on either backend."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import dramatiq
import pytest
from aiohttp.test_utils import TestClient

from fitnus.centers.models import SearchOutbox
from fitnus.clock import system_clock
from fitnus.config import Settings
from fitnus.search.index import CenterQuery
from fitnus.search.redis_geo import RedisGeoIndex
from fitnus.search.service import reindex_all, sync_center
from tests.conftest import eventually
from tests.e2e.test_centers import center_body
from web.centers import CenterPage
from web.keys import CENTER_INDEX

Client = TestClient[Any, Any]
# A spot of its own per test run area, so other tests' centers do not crowd it.
JEJU = (33.4996, 126.5312)


def search_url(**params: Any) -> str:
    query = {"lat": JEJU[0], "lng": JEJU[1], **params}
    return "/api/v1/centers?" + "&".join(f"{name}={value}" for name, value in query.items())


async def names(client: Client, **params: Any) -> list[str]:
    response = await client.get(search_url(**params))
    assert response.status == 200, await response.text()
    return [item["name"] for item in (await response.json())["items"]]


async def test_changes_reach_the_search_through_the_worker(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    owner = await sign_up("owner")
    tag = owner.email[5:13]
    created = await client.post(
        "/api/v1/centers",
        json=center_body(name=f"제주 클라이밍 {tag}", latitude=JEJU[0] + 0.001,
                         longitude=JEJU[1], sports=["climbing"]),
        headers=owner.headers,
    )
    center = await created.json()

    async def listed(name: str, **params: Any) -> bool:
        return name in await names(client, q=tag, **params)

    await eventually(lambda: listed(f"제주 클라이밍 {tag}", sport="climbing"))
    page = await (await client.get(search_url(q=tag))).json()
    assert page["items"][0]["distance_m"] == pytest.approx(111.2, abs=0.5)
    assert set(page["items"][0]) == {"id", "name", "address", "latitude", "longitude", "sports",
                                     "distance_m"}
    assert CenterPage.model_validate(page).items[0].sports == ["climbing"]

    await client.patch(f"/api/v1/centers/{center['id']}", json={"name": f"제주 볼더링 {tag}"},
                       headers=owner.headers)
    await eventually(lambda: listed(f"제주 볼더링 {tag}"))
    assert f"제주 클라이밍 {tag}" not in await names(client, q=tag)

    await client.delete(f"/api/v1/centers/{center['id']}", headers=owner.headers)

    async def gone() -> bool:
        return await names(client, q=tag) == []

    await eventually(gone)

    async def settled() -> bool:
        return not await SearchOutbox.filter(center_id=center["id"]).exists()

    await eventually(settled)


async def test_the_elasticsearch_backend_serves_the_same_endpoint(
    aiohttp_client: Any, make_app: Any, sign_up: Any, settings: Settings, osmem_url: str,
    client: Client,
) -> None:
    owner = await sign_up("owner")
    tag = owner.email[5:13]
    es_client = await aiohttp_client(make_app(
        search_backend="elasticsearch", elasticsearch_url=osmem_url,
        elasticsearch_index=f"centers-http-{tag}",
    ))
    ids = []
    for offset, name in ((0.002, f"한라 요가 {tag}"), (0.001, f"한라 피트니스 {tag}")):
        response = await client.post(
            "/api/v1/centers",
            json=center_body(name=name, latitude=JEJU[0] + offset, longitude=JEJU[1]),
            headers=owner.headers,
        )
        ids.append((await response.json())["id"])
    for center_id in ids:
        await sync_center(center_id, index=es_client.app[CENTER_INDEX])
    assert await names(es_client, q=tag) == [f"한라 피트니스 {tag}", f"한라 요가 {tag}"]
    assert await names(es_client, q=f"요가 {tag}") == [f"한라 요가 {tag}"]
    first = await (await es_client.get(search_url(q=tag, limit=1))).json()
    second = await (await es_client.get(search_url(q=tag, limit=1,
                                                   cursor=first["next_cursor"]))).json()
    assert [first["items"][0]["name"], second["items"][0]["name"]] == [
        f"한라 피트니스 {tag}", f"한라 요가 {tag}"
    ]
    assert second["next_cursor"] is None
    # `fitnus search reindex`: a new index built beside the old, then swapped in.
    assert await reindex_all(index=es_client.app[CENTER_INDEX],
                             now=system_clock.now()) >= len(ids)
    assert await names(es_client, q=tag) == [f"한라 피트니스 {tag}", f"한라 요가 {tag}"]


@pytest.mark.parametrize(
    "params",
    ["lat=37.5", "lng=127", "lat=91&lng=0", "lat=0&lng=181", "lat=a&lng=1",
     "lat=37.5&lng=127&radius_m=50001", "lat=37.5&lng=127&radius_m=-1",
     "lat=37.5&lng=127&sport=chess", "lat=37.5&lng=127&limit=0", "lat=37.5&lng=127&limit=101",
     "lat=37.5&lng=127&cursor=garbage"],
)
async def test_bad_search_input_is_400(client: Client, params: str) -> None:
    response = await client.get(f"/api/v1/centers?{params}")
    assert response.status == 400


@pytest.mark.parametrize("radius", [0, 50_000])
async def test_radius_limits_are_accepted_over_http(client: Client, radius: int) -> None:
    assert (await client.get(f"/api/v1/centers?lat=37.5&lng=127&radius_m={radius}")).status == 200


async def test_redis_refuses_polar_queries_cleanly(client: Client) -> None:
    response = await client.get("/api/v1/centers?lat=90&lng=0")
    assert response.status == 400
    assert (await response.json())["code"] == "latitude_out_of_range"


def test_settings_refuse_an_unknown_backend(settings: Settings) -> None:
    from fitnus.config import _validate
    from fitnus.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        _validate(replace(settings, search_backend="solr"))
    with pytest.raises(ConfigurationError):
        _validate(replace(settings, search_backend="elasticsearch", elasticsearch_url=None))


async def test_a_change_whose_message_was_lost_is_swept_into_the_index(
    client: Client, sign_up: Any, worker: dramatiq.Worker
) -> None:
    from datetime import timedelta

    from fitnus.accounts.models import Role
    from fitnus.accounts.tokens import Principal
    from fitnus.centers.service import CenterDraft, create_center
    from fitnus.clock import system_clock

    owner = await sign_up("owner")
    tag = owner.email[5:13]

    async def web_process_died(center_id: int) -> None:
        """The commit happened; the message never left."""

    center = await create_center(
        principal=Principal(owner.id, Role.OWNER),
        draft=CenterDraft(name=f"유실 센터 {tag}", description="", address="제주",
                          latitude=JEJU[0], longitude=JEJU[1], sports=["gym"]),
        clock=system_clock, index_center=web_process_died,
    )
    await SearchOutbox.filter(center_id=center.id).update(
        updated_at=system_clock.now() - timedelta(minutes=5)
    )
    from actors.search import sweep_search_outbox

    sweep_search_outbox.send()

    async def listed() -> bool:
        return await names(client, q=tag) == [f"유실 센터 {tag}"]

    await eventually(listed)



async def test_a_moved_or_removed_center_leaves_every_web_process_within_a_second(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, redis: Any,
    settings: Settings, worker: dramatiq.Worker,
) -> None:
    """Two web processes (two apps, two caches) hold a center in their cache
    of places searched lately; a second after the worker has indexed its
    move, and later its removal, neither shows it any more."""
    webs = [await aiohttp_client(make_app(search_cache_seconds=3)) for _ in range(2)]
    owner = await sign_up("owner")
    tag = owner.email[5:13]
    here = {"latitude": JEJU[0] - 0.002, "longitude": JEJU[1]}
    created = await client.post("/api/v1/centers", headers=owner.headers,
                                json=center_body(name=f"캐시 센터 {tag}", **here))
    center_url = f"/api/v1/centers/{(await created.json())['id']}"
    direct = RedisGeoIndex(redis=redis, prefix=settings.redis_key_prefix)  # no cache

    async def indexed() -> bool:
        page = await direct.search(CenterQuery(latitude=JEJU[0], longitude=JEJU[1], text=tag))
        return bool(page.hits)

    async def cached_by_every_web() -> None:
        await eventually(indexed)
        for web in webs:
            await eventually(lambda web=web: listed_by(web))

    async def listed_by(web: Client) -> bool:
        return await names(web, q=tag) == [f"캐시 센터 {tag}"]

    async def gone_from_every_web_within_a_second() -> None:
        await eventually(lambda: not_(indexed))
        for web in webs:  # one second from the index's change, for both
            await eventually(lambda web=web: not_(lambda: listed_by(web)), deadline_seconds=1)

    await cached_by_every_web()
    await client.patch(center_url, headers=owner.headers,
                       json={"latitude": JEJU[0] + 0.5})  # 55 km north, out of reach
    await gone_from_every_web_within_a_second()

    await client.patch(center_url, headers=owner.headers, json=here)
    await cached_by_every_web()
    await client.delete(center_url, headers=owner.headers)
    await gone_from_every_web_within_a_second()


async def not_(check: Any) -> bool:
    return not await check()
