"""Many SSE streams on one web process, and one event to each at once.

    .venv/bin/python bench/sse.py [--clients 10000] [--runs 3]

Starts one `fitnus web` process on MariaDB + Redis, opens one stream per
person (distinct users, Bearer tokens) from an asyncio client in this
process, then writes one notification row per person and rings every
doorbell at the same moment. Prints delivery latency (p50/p99/max from the
ring to the event's arrival), memory per connection (the web process's RSS
growth divided by clients) and the clients connected without error.

In the same run, the floor: a bare aiohttp process holding as many streams,
each waiting on one shared event and writing one pre-built event when a
Redis message rings it (no database, no rows, no JSON), read by the same
client. Our figures read as ratios to it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flash_crowd import prepare
from bench.http_baseline import (
    MYSQL_URL,
    REDIS_URL,
    drop_database,
    free_port,
    process,
    wait_until_up,
)
from fitnus.db import database, migrate
from fitnus.keys import Keys
from fitnus.notifications.models import Notification
from fitnus.notifications.service import ring
from fitnus.redis_client import open_redis

ROOT = Path(__file__).resolve().parents[1]
CONNECT_BATCH = 500


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_stream(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**16)
    writer.write(f"GET /api/v1/events HTTP/1.1\r\nHost: bench\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(status.decode())
    while (await reader.readline()).strip():
        pass  # response headers
    return reader, writer


async def wait_for_event(reader: asyncio.StreamReader, event_type: bytes) -> float:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("stream closed")
        if event_type in line:
            return time.time()


FLOOR_EVENT = b"id: 1\nevent: bench.ping\ndata: {}\n\n"


def serve_floor(port: int, channel: str) -> None:
    """The bare fan-out: streams that wait for one ring and write one event."""
    from aiohttp import web
    from redis.asyncio import Redis

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        await request.app["rung"].wait()
        await response.write(FLOOR_EVENT)
        await request.app["closing"].wait()
        return response

    async def healthz(request: web.Request) -> web.Response:
        return web.Response()

    async def listen(app: web.Application) -> Any:
        app["rung"], app["closing"] = asyncio.Event(), asyncio.Event()
        redis = Redis.from_url(REDIS_URL)
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)

        async def ring() -> None:
            async for _ in pubsub.listen():
                app["rung"].set()

        task = asyncio.create_task(ring())
        yield
        app["closing"].set()
        task.cancel()
        await redis.aclose()

    app = web.Application()
    app.cleanup_ctx.append(listen)
    app.router.add_get("/api/v1/events", stream)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                shutdown_timeout=1)


async def fan_out(
    port: int, pid: int, tokens: list[str], ring: Callable[[], Awaitable[None]],
    before_ring: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, float]:
    """Open a stream per token, ring once, and time each stream's event."""
    before = rss_kib(pid)
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failures = 0
    for start in range(0, len(tokens), CONNECT_BATCH):
        opened = await asyncio.gather(
            *(open_stream(port, token) for token in tokens[start:start + CONNECT_BATCH]),
            return_exceptions=True)
        for result in opened:
            if isinstance(result, BaseException):
                failures += 1
            else:
                streams.append(result)
    await asyncio.sleep(1)  # let the server settle before measuring memory
    after = rss_kib(pid)
    if before_ring is not None:
        await before_ring()
    waiting = [asyncio.create_task(wait_for_event(reader, b"bench.ping"))
               for reader, _ in streams]
    rung_at = time.time()
    await ring()
    arrivals = await asyncio.gather(*waiting, return_exceptions=True)
    for _, writer in streams:
        writer.close()
    latencies = sorted(arrival - rung_at for arrival in arrivals if isinstance(arrival, float))
    return {
        "clients": len(streams), "failures": failures,
        "lost": sum(1 for arrival in arrivals if not isinstance(arrival, float)),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
        "kib_per_client": (after - before) / max(1, len(streams)),
    }


async def one_run(args: argparse.Namespace, database_url: str) -> dict[str, float]:
    port = free_port()
    prefix = f"bench-sse-{secrets.token_hex(3)}:"
    secret = secrets.token_urlsafe(48)
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, HTTP_PORT=str(port),
               REDIS_KEY_PREFIX=prefix, JWT_SECRET=secret, LOG_LEVEL="WARNING",
               FITNUS_VAR_DIR=str(ROOT / "var" / "bench"))
    async with database(database_url):
        _, tokens, _ = await prepare(args.clients, secret)
        redis = open_redis(REDIS_URL)
        user_ids = await _user_ids(len(tokens))

        async def write_rows() -> None:
            now = datetime.now(UTC)
            await Notification.bulk_create(
                [Notification(user_id=user_id, type="bench.ping", payload={}, created_at=now,
                              dedupe_key=f"bench:{secrets.token_hex(4)}")
                 for user_id in user_ids],
                batch_size=2000)

        async def ring_ours() -> None:
            await ring(redis, Keys(prefix), user_ids)

        try:
            with process([sys.executable, "-m", "fitnus", "web"], env=env) as web:
                await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/healthz")
                ours = await fan_out(port, web.pid, tokens, ring_ours, before_ring=write_rows)
            floor_port, channel = free_port(), f"{prefix}floor"
            with process([sys.executable, __file__, "--serve-floor", str(floor_port),
                          "--channel", channel]) as floor:
                await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{floor_port}/healthz")

                async def ring_floor() -> None:
                    await redis.publish(channel, b"ring")

                bare = await fan_out(floor_port, floor.pid, tokens, ring_floor)
        finally:
            await redis.aclose()
    return {**ours, **{f"floor_{name}": value for name, value in bare.items()}}


async def _user_ids(count: int) -> list[int]:
    from fitnus.accounts.models import Role, User

    users = await User.filter(role=Role.USER).order_by("-id").limit(count)
    return [user.id for user in users]


async def main_async(args: argparse.Namespace) -> None:
    name = f"fitnus_bench_{secrets.token_hex(3)}"
    url = f"{MYSQL_URL}/{name}"
    await migrate(url)
    results = []
    try:
        for _ in range(args.runs):
            results.append(await one_run(args, url))
            print(results[-1])
    finally:
        await asyncio.to_thread(drop_database, name)
    print(f"\n{args.clients} SSE clients on one web process; one event to each at once; "
          "floor: a bare aiohttp process writing one pre-built event to as many streams")
    print(f"{'run':>4} {'server':>6} {'clients':>8} {'failed':>7} {'lost':>5} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'KiB/client':>10} {'p99 ÷ floor':>12}")
    for number, r in enumerate(results, start=1):
        for server, key in (("ours", ""), ("floor", "floor_")):
            print(f"{number:4d} {server:>6} {r[key + 'clients']:8.0f} {r[key + 'failures']:7.0f} "
                  f"{r[key + 'lost']:5.0f} {r[key + 'p50_ms']:8.1f} {r[key + 'p99_ms']:8.1f} "
                  f"{r[key + 'max_ms']:8.1f} {r[key + 'kib_per_client']:10.1f} "
                  f"{r[key + 'p99_ms'] / r['floor_p99_ms']:12.2f}")
    print(f"median p99 ÷ floor p99: "
          f"{statistics.median(r['p99_ms'] / r['floor_p99_ms'] for r in results):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--channel", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor, args.channel)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
