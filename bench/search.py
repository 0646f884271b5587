"""Center search on 100,000 centers: four approaches, one run.

    .venv/bin/python bench/search.py [--centers 100000] [--queries 400] [--http-seconds 8]

Loads centers into a fresh MariaDB database, indexes them in Redis (own key
prefix) and in osmem-server (from its wheel), then runs the same random query
points in Seoul (radius 1–5 km, half with a sport filter) through:

  (a) naive: every center from MySQL, distances in Python (the original start)
  (b) MySQL bounding box on indexed latitude/longitude, exact distance in Python
  (c) our Redis GEO backend, next to a bare GEOSEARCH on the same set
  (d) our Elasticsearch backend against osmem-server (not Elasticsearch itself)

and finally drives `GET /api/v1/centers` over HTTP with wrk next to an empty
aiohttp handler and to the floor of the stack: an aiohttp handler that makes
one bare GEOSEARCH round trip through redis-py and nothing else; with the
web process's cache of popular places on and off, and that cache alone on
aiohttp without our web tier (its ceiling), on two query mixes (uniform
over Seoul, and 80 % of queries in 5 % of its cells), printing each
server's and Redis's CPU per request. Density: 40 % of the centers fall
in a 28 × 28 km box over Seoul (~50 per km²), the rest anywhere over South
Korea. ``--http-only`` skips the four approaches.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_baseline import (
    MYSQL_URL,
    REDIS_URL,
    cpu_seconds,
    drop_database,
    free_port,
    process,
    wait_until_up,
    wrk,
)
from fitnus.accounts.models import Role, User
from fitnus.centers.models import Center
from fitnus.centers.rules import SPORTS
from fitnus.db import database, migrate
from fitnus.search.elastic import ElasticsearchIndex
from fitnus.search.index import CenterQuery
from fitnus.search.redis_geo import REDIS_EARTH_RADIUS_M, RedisGeoIndex
from fitnus.search.service import reindex_all

ROOT = Path(__file__).resolve().parents[1]
SEOUL = (37.45, 37.70, 126.85, 127.17)
KOREA = (34.5, 38.3, 126.3, 129.4)
SEOUL_SHARE = 0.4
LIMIT = 20
NAIVE_QUERIES = 8
# A query point per request: uniform over Seoul, or (the realistic mix) 80 %
# of them in 5 % of the cells of a geohash-6-sized grid (0.0055° × 0.011°,
# about 0.6 × 1.0 km), the popular places; radius 1–5 km, half with a sport.
WRK_SCRIPT = """
math.randomseed(os.time())
local hot = {%(hot)s}
request = function()
  local lat, lng
  if #hot > 0 and math.random() < 0.8 then
    local cell = hot[math.random(#hot)]
    lat = cell[1] + math.random() * %(cell_lat)s
    lng = cell[2] + math.random() * %(cell_lng)s
  else
    lat = 37.45 + math.random() * 0.25
    lng = 126.85 + math.random() * 0.32
  end
  local radius = 1000 + math.random(0, 4000)
  local path = string.format("/api/v1/centers?lat=%%.6f&lng=%%.6f&radius_m=%%d", lat, lng, radius)
  if math.random() < 0.5 then path = path .. "&sport=gym" end
  return wrk.format("GET", path)
end
"""
HOT_CELL_DEGREES = (0.0055, 0.011)
HOT_SHARE_OF_CELLS = 0.05


def wrk_script(hot: bool, rng: random.Random) -> str:
    cells: list[tuple[float, float]] = []
    if hot:
        rows = int((SEOUL[1] - SEOUL[0]) / HOT_CELL_DEGREES[0])
        columns = int((SEOUL[3] - SEOUL[2]) / HOT_CELL_DEGREES[1])
        every = [(SEOUL[0] + row * HOT_CELL_DEGREES[0], SEOUL[2] + column * HOT_CELL_DEGREES[1])
                 for row in range(rows) for column in range(columns)]
        cells = rng.sample(every, max(1, round(len(every) * HOT_SHARE_OF_CELLS)))
    return WRK_SCRIPT % {
        "hot": ",".join(f"{{{lat:.6f},{lng:.6f}}}" for lat, lng in cells),
        "cell_lat": HOT_CELL_DEGREES[0], "cell_lng": HOT_CELL_DEGREES[1],
    }


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * REDIS_EARTH_RADIUS_M * math.asin(math.sqrt(a))


def random_point(box: tuple[float, float, float, float], rng: random.Random) -> tuple[float, float]:
    return rng.uniform(box[0], box[1]), rng.uniform(box[2], box[3])


async def load_centers(count: int, rng: random.Random) -> None:
    owner = await User.create(email=f"bench-{secrets.token_hex(4)}@bench.example.com",
                              name="bench", role=Role.OWNER, password_hash="-")
    now = datetime.now(UTC)
    batch: list[Center] = []
    for number in range(count):
        box = SEOUL if rng.random() < SEOUL_SHARE else KOREA
        latitude, longitude = random_point(box, rng)
        batch.append(Center(
            owner_id=owner.id, name=f"센터 {number}", description="", address="대한민국",
            latitude=latitude, longitude=longitude, sports=rng.sample(SPORTS, 2),
            created_at=now, updated_at=now,
        ))
        if len(batch) == 2000:
            await Center.bulk_create(batch)
            batch = []
    if batch:
        await Center.bulk_create(batch)


async def index_all(index: Any) -> float:
    started = time.perf_counter()
    await reindex_all(index=index, now=datetime.now(UTC))
    return time.perf_counter() - started


def make_queries(count: int, rng: random.Random) -> list[CenterQuery]:
    queries = []
    for number in range(count):
        latitude, longitude = random_point(SEOUL, rng)
        queries.append(CenterQuery(
            latitude=latitude, longitude=longitude, radius_m=rng.uniform(1000, 5000),
            sport="gym" if number % 2 else None, limit=LIMIT,
        ))
    return queries


async def naive(query: CenterQuery) -> list[int]:
    rows = await Center.filter(deleted_at=None).values_list("id", "latitude", "longitude", "sports")
    return _nearest(rows, query)


async def bounding_box(query: CenterQuery) -> list[int]:
    dlat = math.degrees(query.radius_m / REDIS_EARTH_RADIUS_M)
    dlng = dlat / math.cos(math.radians(query.latitude))
    rows = await Center.filter(
        latitude__gte=query.latitude - dlat, latitude__lte=query.latitude + dlat,
        longitude__gte=query.longitude - dlng, longitude__lte=query.longitude + dlng,
        deleted_at=None,
    ).values_list("id", "latitude", "longitude", "sports")
    return _nearest(rows, query)


def _nearest(rows: list[Any], query: CenterQuery) -> list[int]:
    found = []
    for center_id, latitude, longitude, sports in rows:
        if query.sport and query.sport not in sports:
            continue
        distance = haversine_m(query.latitude, query.longitude, latitude, longitude)
        if distance <= query.radius_m:
            found.append((distance, center_id))
    return [center_id for _, center_id in sorted(found)[:LIMIT]]


async def timed(
    queries: list[CenterQuery], run: Callable[[CenterQuery], Awaitable[Any]]
) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for query in queries:
        begun = time.perf_counter()
        await run(query)
        latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "qps": len(queries) / elapsed,
    }


async def run_benchmarks(args: argparse.Namespace, database_url: str, prefix: str) -> dict:
    from elasticsearch import AsyncElasticsearch
    from osmem_server import OsmemServer

    from fitnus.redis_client import open_redis
    from tests.search_servers import PlainJsonNode

    rng = random.Random(args.seed)
    results: dict[str, dict[str, float]] = {}
    async with database(database_url):
        started = time.perf_counter()
        await load_centers(args.centers, rng)
        print(f"loaded {args.centers} centers in {time.perf_counter() - started:.0f} s")
        redis = open_redis(REDIS_URL)
        redis_index = RedisGeoIndex(redis=redis, prefix=prefix)
        print(f"indexed in Redis in {await index_all(redis_index):.0f} s")
        queries = make_queries(args.queries, rng)
        geo_key = f"{prefix}{{centers}}:geo"

        async def bare_geosearch(query: CenterQuery) -> Any:
            key = f"{geo_key}:{query.sport}" if query.sport else geo_key
            return await redis.geosearch(
                key, longitude=query.longitude, latitude=query.latitude,
                radius=query.radius_m, unit="m", sort="ASC", count=LIMIT, withdist=True,
            )

        if args.http_only:
            await redis.aclose()
            return results
        results["(a) naive: all rows from MySQL, Python distances"] = await timed(
            queries[:NAIVE_QUERIES], naive)
        results["(b) MySQL bounding box on (latitude, longitude)"] = await timed(
            queries, bounding_box)
        results["bare GEOSEARCH ... COUNT 20 (reference)"] = await timed(queries, bare_geosearch)
        results["(c) Redis GEO backend (CenterIndex.search)"] = await timed(
            queries, redis_index.search)

        with OsmemServer.start() as server:
            client = AsyncElasticsearch(server.url, node_class=PlainJsonNode, request_timeout=120)
            es_index = ElasticsearchIndex(client=client, index="bench-centers", refresh=False)
            await es_index.ensure()
            print(f"indexed in osmem in {await index_all(es_index):.0f} s")
            await es_index.refresh()
            results["(d) Elasticsearch backend on osmem-server"] = await timed(
                queries, es_index.search)
            await es_index.close()
            if server.process.stdout is not None:
                server.process.stdout.close()
        await redis.aclose()
    return results


def serve_floor(port: int, prefix: str) -> None:
    """The floor for any search endpoint on aiohttp + redis-py: one GEOSEARCH
    round trip (a 500 m circle, where ours starts) and the members joined into
    a body, with no parsing, validation, framework or distance filter."""
    from aiohttp import web
    from redis.asyncio import Redis

    geo = f"{prefix}{{centers}}:geo"

    async def redis_ctx(app: web.Application) -> Any:
        app["redis"] = Redis.from_url(REDIS_URL)
        yield
        await app["redis"].aclose()

    async def search(request: web.Request) -> web.Response:
        query = request.query
        key = f"{geo}:{query['sport']}" if "sport" in query else geo
        found = await request.app["redis"].execute_command(
            "GEOSEARCH", key, "FROMLONLAT", query["lng"], query["lat"], "BYRADIUS", 500, "m",
            "ASC", "COUNT", LIMIT + 2, "WITHDIST")
        return web.Response(body=b"[" + b",".join(member for member, _ in found) + b"]",
                            content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(redis_ctx)
    app.router.add_get("/api/v1/centers", search)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_cache_alone(port: int, prefix: str, cache_seconds: float) -> None:
    """The cache's own ceiling on this stack: our index with its cache of
    popular places, on aiohttp with none of our web tier (no middleware, no
    validation: the query's numbers are read with float()), writing the page
    as our endpoint does. If this does not beat the floor, no endpoint of ours
    built on the cache can."""
    from aiohttp import web

    from fitnus.redis_client import open_redis
    from web.centers import search_page_body

    async def index_ctx(app: web.Application) -> Any:
        redis = open_redis(REDIS_URL)
        app["index"] = RedisGeoIndex(redis=redis, prefix=prefix, cache_seconds=cache_seconds)
        await app["index"].ensure()
        yield
        await app["index"].close()
        await redis.aclose()

    async def search(request: web.Request) -> web.Response:
        query = request.query
        page = await request.app["index"].search(CenterQuery(
            latitude=float(query["lat"]), longitude=float(query["lng"]),
            radius_m=float(query.get("radius_m", 3000)), sport=query.get("sport"), limit=LIMIT))
        return web.Response(body=search_page_body(page), content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(index_ctx)
    app.router.add_get("/api/v1/centers", search)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


MIXES = {"uniform": False, "80 % in 5 % of cells": True}
CACHE_SECONDS = 3  # the cached server's SEARCH_CACHE_SECONDS unless the environment sets it
SERVERS = ("empty aiohttp handler", "GET /api/v1/centers, cache on",
           "GET /api/v1/centers, cache off", "cache alone on aiohttp", "floor")


def http_rates(
    args: argparse.Namespace, database_url: str, prefix: str
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """By mix and server, medians of ``--http-runs``: requests/s, and CPU
    microseconds per request of the server process and of Redis."""
    empty_port, cached_port, uncached_port, alone_port, floor_port = (
        free_port() for _ in range(5))
    cache_seconds = os.environ.get("SEARCH_CACHE_SECONDS", str(CACHE_SECONDS))
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix,
               JWT_SECRET=secrets.token_urlsafe(48), LOG_LEVEL="WARNING",
               FITNUS_VAR_DIR=str(ROOT / "var" / "bench"))
    rng = random.Random(args.seed)
    scripts = {}
    for mix, hot in MIXES.items():
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(wrk_script(hot, rng))
        scripts[mix] = script.name
    ports = dict(zip(SERVERS, (empty_port, cached_port, uncached_port, alone_port, floor_port),
                     strict=True))
    rates: dict[str, dict[str, list[float]]] = {
        mix: {server: [] for server in SERVERS} for mix in MIXES}
    # CPU microseconds per request, of the server process and of Redis.
    costs: dict[str, dict[str, list[tuple[float, float]]]] = {
        mix: {server: [] for server in SERVERS} for mix in MIXES}
    fitnus = [sys.executable, "-m", "fitnus", "web"]
    redis_pid = next(int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()
                     and (entry / "comm").exists()
                     and (entry / "comm").read_text().strip() == "redis-server")
    with (
        process([sys.executable, str(ROOT / "bench" / "http_baseline.py"),
                 "--serve-empty", str(empty_port)]) as empty,
        process(fitnus, env={**env, "HTTP_PORT": str(cached_port),
                             "SEARCH_CACHE_SECONDS": cache_seconds}) as cached,
        process(fitnus, env={**env, "HTTP_PORT": str(uncached_port),
                             "SEARCH_CACHE_SECONDS": "0"}) as uncached,
        process([sys.executable, __file__, "--serve-cache-alone", str(alone_port),
                 "--prefix", prefix, "--cache-seconds", cache_seconds]) as alone,
        process([sys.executable, __file__, "--serve-floor", str(floor_port),
                 "--prefix", prefix]) as floor,
    ):
        pids = dict(zip(SERVERS, (empty.pid, cached.pid, uncached.pid, alone.pid, floor.pid),
                        strict=True))
        wait_until_up(f"http://127.0.0.1:{empty_port}/")
        wait_until_up(f"http://127.0.0.1:{cached_port}/healthz")
        wait_until_up(f"http://127.0.0.1:{uncached_port}/healthz")
        for port in (alone_port, floor_port):
            wait_until_up(f"http://127.0.0.1:{port}/api/v1/centers?lat=37.5&lng=127")
        for _ in range(args.http_runs):
            for mix in MIXES:
                for server, port in ports.items():
                    script = None if server == "empty aiohttp handler" else scripts[mix]
                    path = "/" if script is None else ""
                    before = cpu_seconds(pids[server]), cpu_seconds(redis_pid)
                    rate = wrk(f"http://127.0.0.1:{port}{path}", args.http_seconds, script=script)
                    answered = rate * args.http_seconds / 1e6
                    rates[mix][server].append(rate)
                    costs[mix][server].append(
                        ((cpu_seconds(pids[server]) - before[0]) / answered,
                         (cpu_seconds(redis_pid) - before[1]) / answered))
    for name in scripts.values():
        os.unlink(name)
    for mix, by_server in rates.items():
        for server, values in by_server.items():
            print(f"{mix:22} {server:34} runs: " + ", ".join(f"{v:.0f}" for v in values))
    return {mix: {server: (statistics.median(values),
                           statistics.median(cost[0] for cost in costs[mix][server]),
                           statistics.median(cost[1] for cost in costs[mix][server]))
                  for server, values in by_server.items()}
            for mix, by_server in rates.items()}


async def drop_redis_keys(prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--centers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--http-seconds", type=int, default=8)
    parser.add_argument("--http-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--http-only", action="store_true",
                        help="load and index, then only the HTTP figures")
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-cache-alone", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache-seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor, args.prefix)
        return
    if args.serve_cache_alone:
        serve_cache_alone(args.serve_cache_alone, args.prefix, args.cache_seconds)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    name = f"fitnus_bench_{secrets.token_hex(3)}"
    database_url = f"{MYSQL_URL}/{name}"
    prefix = f"bench-{name}:"
    asyncio.run(migrate(database_url))
    try:
        results = asyncio.run(run_benchmarks(args, database_url, prefix))
        rates = http_rates(args, database_url, prefix)
    finally:
        drop_database(name)
        asyncio.run(drop_redis_keys(prefix))
    if results:
        reference = results["bare GEOSEARCH ... COUNT 20 (reference)"]["p99_ms"]
        print(f"\n{args.centers} centers; {args.queries} queries in Seoul, radius 1–5 km, "
              f"half with sport=gym ((a) ran {NAIVE_QUERIES})")
        print(f"{'approach':52} {'p50 ms':>8} {'p99 ms':>8} {'q/s':>8} {'p99 / bare':>10}")
        for label, figures in results.items():
            print(f"{label:52} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} "
                  f"{figures['qps']:8.0f} {figures['p99_ms'] / reference:10.2f}")
    print(f"\nHTTP (wrk -t2 -c64 -d{args.http_seconds}s, median of {args.http_runs} runs, "
          f"{args.centers} centers)")
    print(f"{'mix':22} {'server':34} {'req/s':>8} {'÷ empty':>8} {'÷ floor':>8} "
          f"{'server µs':>9} {'Redis µs':>9}")
    for mix, by_server in rates.items():
        empty_rate, floor_rate = by_server["empty aiohttp handler"][0], by_server["floor"][0]
        for server, (rate, server_cpu, redis_cpu) in by_server.items():
            print(f"{mix:22} {server:34} {rate:8.0f} {rate / empty_rate:8.2f} "
                  f"{rate / floor_rate:8.2f} {server_cpu:9.0f} {redis_cpu:9.0f}")

if __name__ == "__main__":
    main()
