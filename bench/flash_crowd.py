"""The flash crowd: 10,000 people press "book" within about a second for a
50-seat session.

    .venv/bin/python bench/flash_crowd.py [--requests 10000] [--web 2] [--workers 1] [--runs 3]

Starts `fitnus web` (several processes on one port) and `fitnus worker`
processes on MariaDB + Redis, fires the requests from an asyncio client (one
person each, paced over `--spread` seconds), then waits until every command
is decided. In the same run, the classic approach as a baseline: an aiohttp
handler that books synchronously with SELECT ... FOR UPDATE on the timeslot
row, same load. Prints the 202 rate, p50/p99 latency, the time from the last
answer until everything is decided, seats confirmed and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.http_baseline import (
    MYSQL_URL,
    REDIS_URL,
    drop_database,
    free_port,
    process,
    wait_until_up,
)
from fitnus.accounts.models import Role, User
from fitnus.accounts.tokens import AccessTokens
from fitnus.booking.models import Reservation
from fitnus.centers.models import Center, Program, Timeslot
from fitnus.commands.models import Command
from fitnus.db import database, migrate
from fitnus.wallet.models import LedgerEntry, LedgerKind, Wallet

ROOT = Path(__file__).resolve().parents[1]
SEATS = 50
PRICE = 10
CLIENT_CONNECTIONS = 256


async def prepare(count: int, secret: str) -> tuple[int, list[str]]:
    """A 50-seat timeslot and ``count`` people with coupons and tokens."""
    now = datetime.now(UTC)
    tag = secrets.token_hex(3)
    owner = await User.create(email=f"owner-{tag}@bench.example.com", name="owner",
                              role=Role.OWNER, password_hash="-")
    center = await Center.create(owner_id=owner.id, name="셀럽 트레이너 스튜디오",
                                 description="", address="서울", latitude=37.5, longitude=127.0,
                                 sports=["gym"], created_at=now, updated_at=now)
    program = await Program.create(center_id=center.id, name="원데이 클래스", sport="gym",
                                   price_coupons=PRICE, duration_minutes=60, description="",
                                   created_at=now)
    timeslot = await Timeslot.create(program_id=program.id, starts_at=now + timedelta(days=2),
                                     ends_at=now + timedelta(days=2, hours=1), capacity=SEATS,
                                     reserved=0, created_at=now)
    await User.bulk_create([User(email=f"p{n}-{tag}@bench.example.com", name=f"p{n}",
                                 role=Role.USER, password_hash="-") for n in range(count)],
                           batch_size=2000)
    people = await User.filter(email__endswith=f"-{tag}@bench.example.com",
                               role=Role.USER).order_by("id")
    await Wallet.bulk_create([Wallet(user_id=p.id, balance=PRICE, held=0, updated_at=now)
                              for p in people], batch_size=2000)
    await LedgerEntry.bulk_create(
        [LedgerEntry(user_id=p.id, kind=LedgerKind.GRANT, amount=PRICE, balance_after=PRICE,
                     reference=f"bench:{p.id}", created_at=now) for p in people],
        batch_size=2000)
    tokens = AccessTokens(secret=secret, algorithm="HS256", issuer="fitnus",
                          audience="fitnus-api", ttl_seconds=3600)
    return timeslot.id, [tokens.issue(user_id=p.id, role=Role.USER, now=now) for p in people]


async def fire(url: str, path: str, body: dict[str, Any], tokens: list[str],
               spread_seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    command_ids: list[str] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=CLIENT_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(token: str) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                async with session.post(f"{url}{path}", json=body,
                                        headers={"Authorization": f"Bearer {token}"}) as reply:
                    answer = await reply.json(content_type=None)
                    statuses[reply.status] = statuses.get(reply.status, 0) + 1
                    if reply.status == 202:
                        command_ids.append(answer["command_id"])
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        tasks = []
        per_tick = max(1, len(tokens) // max(1, int(spread_seconds * 100)))
        for index, token in enumerate(tokens):
            tasks.append(asyncio.create_task(one(token)))
            if index % per_tick == per_tick - 1:
                await asyncio.sleep(0.01)
        sent = time.perf_counter() - began
        await asyncio.gather(*tasks)
        answered = time.perf_counter()
    latencies.sort()
    return {
        "sent_seconds": sent, "answered_at": answered, "duration": answered - began,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "statuses": statuses, "errors": errors, "command_ids": command_ids,
    }


async def wait_decided(command_ids: list[str], answered_at: float) -> float:
    while await Command.filter(id__in=command_ids).count() < len(command_ids):
        await asyncio.sleep(0.02)
    return time.perf_counter() - answered_at


async def run_queue(args: argparse.Namespace, database_url: str, secret: str) -> dict[str, Any]:
    port = free_port()
    prefix = f"bench-flash-{secrets.token_hex(3)}:"
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, HTTP_PORT=str(port),
               REDIS_KEY_PREFIX=prefix, JWT_SECRET=secret, LOG_LEVEL="WARNING",
               FITNUS_VAR_DIR=str(ROOT / "var" / "bench"))
    fitnus = [sys.executable, "-m", "fitnus"]
    async with database(database_url):
        timeslot_id, tokens = await prepare(args.requests, secret)
        webs = [process([*fitnus, "web"], env=env) for _ in range(args.web)]
        workers = [process([*fitnus, "worker"],
                           env={**env, "WORKER_METRICS_PORT": str(free_port())})
                   for _ in range(args.workers)]
        for context in [*webs, *workers]:
            context.__enter__()
        try:
            await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/healthz")
            await asyncio.sleep(1)  # let the workers connect
            result = await fire(f"http://127.0.0.1:{port}", "/api/v1/reservations",
                                {"timeslot_id": timeslot_id}, tokens, args.spread)
            result["decided_after"] = await wait_decided(result["command_ids"],
                                                          result["answered_at"])
            result["confirmed"] = await Reservation.filter(timeslot_id=timeslot_id,
                                                           active=True).count()
        finally:
            for context in [*webs, *workers]:
                context.__exit__(None, None, None)
    return result


CLASSIC_SCHEMA = """
CREATE TABLE IF NOT EXISTS classic_timeslot (id INT PRIMARY KEY, capacity INT, reserved INT);
CREATE TABLE IF NOT EXISTS classic_reservation (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, timeslot_id INT, user_token VARCHAR(600));
"""


def serve_classic(port: int, database_url: str) -> None:
    """The baseline: every request books synchronously under a row lock."""
    import aiomysql
    from aiohttp import web

    parts = urlsplit(database_url)

    async def pool_ctx(app: web.Application) -> Any:
        app["pool"] = await aiomysql.create_pool(
            host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
            password=parts.password or "", db=parts.path.lstrip("/"), maxsize=32, autocommit=False)
        yield
        app["pool"].close()
        await app["pool"].wait_closed()

    async def book(request: web.Request) -> web.Response:
        token = request.headers["Authorization"]
        async with request.app["pool"].acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(
                "SELECT capacity, reserved FROM classic_timeslot WHERE id = 1 FOR UPDATE")
            capacity, reserved = await cursor.fetchone()
            if reserved >= capacity:
                await connection.rollback()
                return web.json_response({"code": "sold_out"}, status=409)
            await cursor.execute("UPDATE classic_timeslot SET reserved = reserved + 1 WHERE id = 1")
            await cursor.execute("INSERT INTO classic_reservation (timeslot_id, user_token) "
                                 "VALUES (1, %s)", (token[-40:],))
            await connection.commit()
        return web.json_response({"status": "confirmed"}, status=201)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/book", book)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, reuse_port=True)


async def run_classic(args: argparse.Namespace, database_url: str,
                      tokens: list[str]) -> dict[str, Any]:
    import aiomysql

    parts = urlsplit(database_url)
    connection = await aiomysql.connect(host=parts.hostname, port=parts.port or 3306,
                                        user=parts.username or "root",
                                        password=parts.password or "",
                                        db=parts.path.lstrip("/"), autocommit=True)
    async with connection.cursor() as cursor:
        for statement in filter(str.strip, CLASSIC_SCHEMA.split(";")):
            await cursor.execute(statement)
        await cursor.execute("DELETE FROM classic_reservation")
        await cursor.execute("REPLACE INTO classic_timeslot VALUES (1, %s, 0)", (SEATS,))
    port = free_port()
    contexts = [process([sys.executable, __file__, "--serve-classic", str(port),
                         "--database-url", database_url]) for _ in range(args.web)]
    for context in contexts:
        context.__enter__()
    await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/healthz")
    try:
        result = await fire(f"http://127.0.0.1:{port}", "/book", {}, tokens, args.spread)
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    async with connection.cursor() as cursor:
        await cursor.execute("SELECT COUNT(*) FROM classic_reservation")
        (result["confirmed"],) = await cursor.fetchone()
    connection.close()
    result["decided_after"] = 0.0  # every answer is the decision
    return result


def report(label: str, result: dict[str, Any], requests: int) -> str:
    return (f"{label:34} {requests / result['duration']:8.0f} {result['p50_ms']:8.1f} "
            f"{result['p99_ms']:8.1f} {result['decided_after']:9.2f} "
            f"{result['confirmed']:5d} {result['errors']:6d}  {result['statuses']}")


async def main_async(args: argparse.Namespace) -> None:
    name = f"fitnus_bench_{secrets.token_hex(3)}"
    database_url = f"{MYSQL_URL}/{name}"
    secret = secrets.token_urlsafe(48)
    await migrate(database_url)
    lines = []
    try:
        for run in range(args.runs):
            queue = await run_queue(args, database_url, secret)
            async with database(database_url):
                _, tokens = await prepare(args.requests, secret)
            classic = await run_classic(args, database_url, tokens)
            lines.append((queue, classic))
            print(f"run {run + 1}: queue decided all {queue['decided_after']:.2f} s after the "
                  f"last answer; classic took {classic['duration']:.2f} s")
    finally:
        await asyncio.to_thread(drop_database, name)
    print(f"\n{args.requests} requests over ~{args.spread} s, {args.web} web process(es), "
          f"{args.workers} worker(s), {SEATS} seats, client: asyncio, "
          f"{CLIENT_CONNECTIONS} connections")
    print(f"{'approach':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'decided s':>9} "
          f"{'seats':>5} {'errors':>6}  statuses")
    for number, (queue, classic) in enumerate(lines, start=1):
        print(report(f"keyed queue (run {number})", queue, args.requests))
        print(report(f"SELECT FOR UPDATE (run {number})", classic, args.requests))
    queue_p99 = statistics.median(q["p99_ms"] for q, _ in lines)
    classic_p99 = statistics.median(c["p99_ms"] for _, c in lines)
    queue_total = statistics.median(q["duration"] + q["decided_after"] for q, _ in lines)
    classic_total = statistics.median(c["duration"] for _, c in lines)
    print(f"\nmedians: p99 {queue_p99:.1f} ms vs {classic_p99:.1f} ms "
          f"({classic_p99 / queue_p99:.1f}x); every request decided after "
          f"{queue_total:.2f} s vs {classic_total:.2f} s ({classic_total / queue_total:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve-classic", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_classic:
        serve_classic(args.serve_classic, args.database_url)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
