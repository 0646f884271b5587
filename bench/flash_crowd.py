"""The flash crowd: 10,000 people press "book" within about a second for a
50-seat session.

    .venv/bin/python bench/flash_crowd.py [--requests 10000] [--web 2] [--workers 1]
        [--connections 128] [--runs 3]

Starts `fitnus web` (several processes on one port) and `fitnus worker`
processes on MariaDB + Redis, fires the requests with wrk (bench/lua/crowd.lua:
one person per request, each with their own token, exactly --requests of them,
--connections at a time, as fast as the server answers), then waits until
every command is decided. In the same run, the classic approach as a baseline: an aiohttp
handler that books synchronously with SELECT ... FOR UPDATE on the timeslot
row, same load; and the floor of the stack: an aiohttp handler that only
checks the token with pyjwt and makes one Redis round trip. Prints how long
firing took, p50/p99 latency, the time from the last answer until everything
is decided, seats confirmed, errors and statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis

from bench.http_baseline import (
    MYSQL_URL,
    REDIS_URL,
    WRK_THREADS,
    cpu_seconds_by_role,
    cpu_spent,
    drop_database,
    forget_keys,
    free_port,
    process,
    wait_until_up,
)
from fitnus.accounts.models import Role, User
from fitnus.accounts.tokens import AccessTokens
from fitnus.booking.models import Reservation
from fitnus.booking.service import QUEUE_KIND
from fitnus.centers.models import Center, Program, Timeslot
from fitnus.commands.models import Command
from fitnus.db import database, migrate
from fitnus.keyed_queue import KeyedQueue
from fitnus.wallet.models import CouponLot, LedgerEntry, LedgerKind, Wallet

ROOT = Path(__file__).resolve().parents[1]
SEATS = 50
PRICE = 10
# wrk's own limit on a run; it is interrupted as soon as the crowd is answered.
WRK_DEADLINE_SECONDS = 120
SAMPLE_SECONDS = 0.05


async def bench_program(*, tag: str, center: str, program: str, price: int) -> Program:
    """An owner of its own, a center in Seoul and one program there."""
    now = datetime.now(UTC)
    owner = await User.create(email=f"owner-{tag}@bench.example.com", name="owner",
                              role=Role.OWNER, password_hash="-")
    place = await Center.create(owner_id=owner.id, name=center, description="", address="서울",
                                latitude=37.5, longitude=127.0, sports=["gym"], created_at=now,
                                updated_at=now)
    return await Program.create(center_id=place.id, name=program, sport="gym",
                                price_coupons=price, duration_minutes=60, description="",
                                created_at=now)


async def prepare(count: int, secret: str) -> tuple[int, list[str], range]:
    """A 50-seat timeslot and ``count`` people with coupons and tokens."""
    now = datetime.now(UTC)
    tag = secrets.token_hex(3)
    program = await bench_program(tag=tag, center="셀럽 트레이너 스튜디오",
                                  program="원데이 클래스", price=PRICE)
    timeslot = await Timeslot.create(program_id=program.id, starts_at=now + timedelta(days=2),
                                     ends_at=now + timedelta(days=2, hours=1), capacity=SEATS,
                                     reserved=0, created_at=now)
    people, issued = await people_with_coupons(count, PRICE, secret, tag=tag)
    return timeslot.id, issued, range(people[0].id, people[-1].id + 1)


async def people_with_coupons(count: int, coupons: int, secret: str, *,
                              tag: str) -> tuple[list[User], list[str]]:
    """``count`` people by id, each holding ``coupons`` (a granted ledger entry
    and its lot) and an access token signed with ``secret``."""
    now = datetime.now(UTC)
    await User.bulk_create([User(email=f"p{n}-{tag}@bench.example.com", name=f"p{n}",
                                 role=Role.USER, password_hash="-") for n in range(count)],
                           batch_size=2000)
    people = await User.filter(email__startswith="p", email__endswith=f"-{tag}@bench.example.com",
                               role=Role.USER).order_by("id")
    await Wallet.bulk_create([Wallet(user_id=p.id, balance=coupons, held=0, updated_at=now)
                              for p in people], batch_size=2000)
    await LedgerEntry.bulk_create(
        [LedgerEntry(user_id=p.id, kind=LedgerKind.GRANT, amount=coupons,
                     balance_after=coupons, reference=f"bench:{p.id}", created_at=now)
         for p in people],
        batch_size=2000)
    await CouponLot.bulk_create(
        [CouponLot(user_id=p.id, coupons=coupons, remaining=coupons, reference=f"bench:{p.id}",
                   acquired_at=now, expires_at=now + timedelta(days=365)) for p in people],
        batch_size=2000)
    tokens = AccessTokens(secret=secret, algorithm="HS256", issuer="fitnus",
                          audience="fitnus-api", ttl_seconds=3600)
    return list(people), [tokens.issue(user_id=p.id, role=Role.USER, now=now) for p in people]


CROWD_SCRIPT = ROOT / "bench" / "lua" / "crowd.lua"


def fire(url: str, path: str, body: dict[str, Any], tokens: list[str],
         connections: int) -> dict[str, Any]:
    """Every token sends one request through wrk (closed loop, ``connections``
    at once); returns wrk's figures and when the first and last answers came."""
    with tempfile.TemporaryDirectory() as scratch:
        tokens_file, done_file = Path(scratch, "tokens"), Path(scratch, "done")
        tokens_file.write_text("\n".join(tokens) + "\n")
        done_file.touch()
        command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{WRK_DEADLINE_SECONDS}s",
                   "--latency", "--timeout", "10s", "-s", str(CROWD_SCRIPT), url, "--",
                   str(tokens_file), path, json.dumps(body), str(WRK_THREADS), str(done_file)]
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        # wrk runs for its whole -d: stop it once every thread's share is answered.
        while len(_last_lines(done_file)) < WRK_THREADS and wrk.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)
        wrk.send_signal(signal.SIGINT)
        output, _ = wrk.communicate(timeout=30)
        finished = _last_lines(done_file)
    figures = dict(line.split(" ", 1) for line in output.splitlines() if line[:1].isupper()
                   and " " in line)
    statuses: dict[int, int] = {}
    for _, counts in finished.values():
        for pair in filter(None, counts.split(",")):
            status, count = pair.split("=")
            statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    last = max(moment for moment, _ in finished.values())
    return {
        "answered_at": last, "duration": last - float(figures["FIRST"]),
        "p50_ms": float(figures["P50"]), "p99_ms": float(figures["P99"]),
        "recorded": int(figures["RECORDED"]), "statuses": statuses,
        "errors": int(figures["ERRORS"]),
    }


def _last_lines(done_file: Path) -> dict[str, tuple[float, str]]:
    """Each wrk thread's latest "done" line: when, and its status counts."""
    finished: dict[str, tuple[float, str]] = {}
    for line in done_file.read_text().splitlines():
        thread, moment, counts = [*line.split(" "), ""][:3]
        finished[thread] = (float(moment), counts)
    return finished


async def crowd_until_decided(url: str, body: dict[str, Any], tokens: list[str],
                              connections: int, people: range,
                              accepted: Callable[[], Awaitable[int]],
                              path: str = "/api/v1/reservations") -> dict[str, Any]:
    """Fire the crowd while counting these people's decided commands every
    50 ms; add how long after the last answer the last accepted request was
    decided (``accepted`` counts them: the queue's position counter)."""
    samples: list[tuple[float, int]] = []
    answered = asyncio.Event()

    async def sample() -> None:
        samples.append((time.time(), await Command.filter(
            user_id__gte=people.start, user_id__lt=people.stop).count()))

    async def sampler() -> None:
        while not answered.is_set():
            await sample()
            await asyncio.sleep(SAMPLE_SECONDS)

    sampling = asyncio.create_task(sampler())
    cpu_before = cpu_seconds_by_role()
    result = await asyncio.to_thread(fire, url, path, body, tokens, connections)
    answered.set()
    await sampling
    expected = await accepted()
    while samples[-1][1] < expected:
        await asyncio.sleep(SAMPLE_SECONDS)
        await sample()
    decided = next(moment for moment, count in samples if count >= expected)
    result["decided_after"] = max(0.0, decided - result["answered_at"])
    result["cpu"] = cpu_spent(cpu_before, cpu_seconds_by_role())
    return result


@dataclass(frozen=True)
class Crowd:
    """What one keyed-queue crowd aims at: the kind of queue and the key,
    the request, the people's tokens, and how many it confirmed."""

    kind: str
    key: int
    path: str
    body: dict[str, Any]
    tokens: list[str]
    people: range
    confirmed: Callable[[], Awaitable[int]]


async def run_crowd(args: argparse.Namespace, database_url: str, secret: str,
                    prepare_crowd: Callable[[], Awaitable[Crowd]]) -> dict[str, Any]:
    """`fitnus web` and `fitnus worker` processes on a key prefix of their own,
    the crowd fired at them, and every accepted request waited for."""
    port = free_port()
    prefix = f"bench-crowd-{secrets.token_hex(3)}:"
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, HTTP_PORT=str(port),
               REDIS_KEY_PREFIX=prefix, JWT_SECRET=secret, LOG_LEVEL="WARNING",
               FITNUS_VAR_DIR=str(ROOT / "var" / "bench"))
    fitnus = [sys.executable, "-m", "fitnus"]
    async with database(database_url):
        crowd = await prepare_crowd()
        webs = [process([*fitnus, "web"], env=env) for _ in range(args.web)]
        workers = [process([*fitnus, "worker"],
                           env={**env, "WORKER_METRICS_PORT": str(free_port())})
                   for _ in range(args.workers)]
        for context in [*webs, *workers]:
            context.__enter__()
        try:
            await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/healthz")
            await asyncio.sleep(1)  # let the workers connect
            redis = Redis.from_url(REDIS_URL)
            position = KeyedQueue(redis=redis, prefix=prefix, kind=crowd.kind).flag(
                crowd.key, "position")

            async def accepted() -> int:
                return int(await redis.get(position) or 0)

            result = await crowd_until_decided(f"http://127.0.0.1:{port}", crowd.body,
                                               crowd.tokens, args.connections, crowd.people,
                                               accepted, path=crowd.path)
            await redis.aclose()
            result["confirmed"] = await crowd.confirmed()
        finally:
            for context in [*webs, *workers]:
                context.__exit__(None, None, None)
            await forget_keys(prefix)
    return result


async def run_queue(args: argparse.Namespace, database_url: str, secret: str) -> dict[str, Any]:
    async def timeslot_crowd() -> Crowd:
        timeslot_id, tokens, people = await prepare(args.requests, secret)

        async def confirmed() -> int:
            return await Reservation.filter(timeslot_id=timeslot_id, active=True).count()

        return Crowd(QUEUE_KIND, timeslot_id, "/api/v1/reservations",
                     {"timeslot_id": timeslot_id}, tokens, people, confirmed)

    return await run_crowd(args, database_url, secret, timeslot_crowd)


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
        result = await asyncio.to_thread(fire, f"http://127.0.0.1:{port}", "/book", {}, tokens,
                                         args.connections)
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    async with connection.cursor() as cursor:
        await cursor.execute("SELECT COUNT(*) FROM classic_reservation")
        (result["confirmed"],) = await cursor.fetchone()
    connection.close()
    result["decided_after"] = 0.0  # every answer is the decision
    return result


def serve_floor(port: int, secret: str) -> None:
    """The floor of this stack: check the token (pyjwt, as `fitnus web` does),
    read the body, one Redis round trip, 202. No framework of ours, no
    validation, no queue: what any design on aiohttp + redis-py pays."""
    from aiohttp import web

    from fitnus.accounts.tokens import AccessTokens
    from fitnus.redis_client import open_redis

    tokens = AccessTokens(secret=secret, algorithm="HS256", issuer="fitnus",
                          audience="fitnus-api", ttl_seconds=3600)
    counter = f"bench-floor-{secrets.token_hex(3)}"

    async def redis_ctx(app: web.Application) -> Any:
        app["redis"] = open_redis(REDIS_URL)  # the pool `fitnus web` uses
        yield
        await app["redis"].delete(counter)
        await app["redis"].aclose()

    async def accept(request: web.Request) -> web.Response:
        tokens.verify(request.headers["Authorization"].removeprefix("Bearer "))
        await request.read()
        position = await request.app["redis"].incr(counter)
        return web.json_response({"position": position}, status=202)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.cleanup_ctx.append(redis_ctx)
    app.router.add_post("/api/v1/reservations", accept)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, reuse_port=True)


async def run_floor(args: argparse.Namespace, secret: str, tokens: list[str]) -> dict[str, Any]:
    port = free_port()
    # --secret=…: a secret may begin with "-", which argparse would take for an option.
    contexts = [process([sys.executable, __file__, "--serve-floor", str(port),
                         f"--secret={secret}"]) for _ in range(args.web)]
    for context in contexts:
        context.__enter__()
    try:
        await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/healthz")
        cpu_before = cpu_seconds_by_role()
        result = await asyncio.to_thread(fire, f"http://127.0.0.1:{port}",
                                         "/api/v1/reservations", {"timeslot_id": 1}, tokens,
                                         args.connections)
        result["cpu"] = cpu_spent(cpu_before, cpu_seconds_by_role())
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    return {**result, "decided_after": 0.0, "confirmed": 0}


def report(label: str, result: dict[str, Any], requests: int) -> str:
    """One line of figures, then where the CPU went: ms per request by role."""
    cpu = "  ".join(f"{role} {seconds * 1000 / requests:.2f}"
                    for role, seconds in sorted(result.get("cpu", {}).items()))
    return (f"{label:34} {result['duration']:7.2f} {requests / result['duration']:8.0f} "
            f"{result['p50_ms']:8.1f} "
            f"{result['p99_ms']:8.1f} {result['decided_after']:9.2f} "
            f"{result['confirmed']:5d} {result['errors']:6d}  {result['statuses']}"
            + (f"\n{'':34} CPU ms per request: {cpu}" if cpu else ""))


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
                _, tokens, _ = await prepare(args.requests, secret)
            classic = await run_classic(args, database_url, tokens)
            floor = await run_floor(args, secret, tokens)
            lines.append((queue, classic, floor))
            print(f"run {run + 1}: queue decided all {queue['decided_after']:.2f} s after the "
                  f"last answer; classic took {classic['duration']:.2f} s")
    finally:
        await asyncio.to_thread(drop_database, name)
    print(f"\n{args.requests} requests, {args.web} web process(es), {args.workers} worker(s), "
          f"{SEATS} seats, client: wrk -t{WRK_THREADS} -c{args.connections} (closed loop)")
    print(f"{'approach':34} {'fired s':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'decided s':>9} {'seats':>5} {'errors':>6}  statuses")
    for number, (queue, classic, floor) in enumerate(lines, start=1):
        print(report(f"keyed queue (run {number})", queue, args.requests))
        print(report(f"SELECT FOR UPDATE (run {number})", classic, args.requests))
        print(report(f"floor: pyjwt + 1 Redis trip (run {number})", floor, args.requests))
    queue_p99 = statistics.median(q["p99_ms"] for q, _, _ in lines)
    classic_p99 = statistics.median(c["p99_ms"] for _, c, _ in lines)
    queue_total = statistics.median(q["duration"] + q["decided_after"] for q, _, _ in lines)
    classic_total = statistics.median(c["duration"] for _, c, _ in lines)
    floor_fired = statistics.median(f["duration"] for _, _, f in lines)
    floor_p99 = statistics.median(f["p99_ms"] for _, _, f in lines)
    print(f"\nmedians: p99 {queue_p99:.1f} ms vs {classic_p99:.1f} ms "
          f"({classic_p99 / queue_p99:.1f}x); every request decided after "
          f"{queue_total:.2f} s vs {classic_total:.2f} s ({classic_total / queue_total:.1f}x); "
          f"the floor fired in {floor_fired:.2f} s with p99 {floor_p99:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve-classic", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_classic:
        serve_classic(args.serve_classic, args.database_url)
        return
    if args.serve_floor:
        serve_floor(args.serve_floor, args.secret)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
