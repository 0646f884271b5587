"""Decisions grow with worker processes: a crowd on 50 timeslots at once,
decided by 1, 2 and 4 `fitnus worker` processes, beside MariaDB's own
ceiling for the same batched writes, measured in the same run.

    .venv/bin/python bench/scale_workers.py [--timeslots 50] [--requests 10000]
        [--workers 1,2,4] [--runs 3]

Each round queues ``--requests`` reservations (a person each) spread
evenly over fresh timeslots (the web tier's own path, ``CommandQueue.send``,
with the drain messages held back), then sends every timeslot's drain
message at once: the crowd is already accepted at t0, and the round measures
only deciding. Prints decisions per second (all requests over the time from
t0 until the last decision committed), when half and 99 % had committed
(p50/p99 from accept to decision; counted every 20 ms), and the CPU each role
spent per decision ("other" is mostly this script counting).

The ceiling is MariaDB alone doing the same batched writes: per timeslot one
transaction that locks the timeslot and the wallets, reads what a batch
reads, debits the wallets and the coupon lots, writes the reservations,
ledger rows, draws, commands and notifications in multi-row statements, and
commits; one connection per timeslot, all at once, from a
client that does nothing else (raw aiomysql, tables of the bench's own with
the same rows and indexes). It is what any number of workers could reach on
this machine's database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
import uuid
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flash_crowd import bench_program, people_with_coupons
from bench.http_baseline import (
    MYSQL_URL,
    REDIS_URL,
    cpu_seconds_by_role,
    cpu_spent,
    drop_database,
    forget_keys,
    free_port,
    process,
    wait_until_up,
)
from fitnus.booking.outcomes import RESERVE_SEAT
from fitnus.booking.service import timeslot_queue
from fitnus.centers.models import Timeslot
from fitnus.clock import system_clock
from fitnus.commands.models import Command
from fitnus.commands.pending import PendingCommands
from fitnus.commands.queued import CommandQueue
from fitnus.config import load_settings
from fitnus.db import database, migrate
from fitnus.keys import Keys
from fitnus.redis_client import open_redis

ROOT = Path(__file__).resolve().parents[1]
PRICE = 10
# How often the decisions visible are counted: the figures' resolution.
SAMPLE_SECONDS = 0.02
QUEUEING_CONCURRENCY = 64


async def fresh_timeslots(count: int, capacity: int, *, day: int) -> list[int]:
    """``count`` timeslots on their own ``day`` (from now): a person seated in
    one round has no overlapping session in the next."""
    now = datetime.now(UTC)
    program = await bench_program(tag=secrets.token_hex(3), center="스케일 센터",
                                  program="그룹 PT", price=PRICE)
    starts = now + timedelta(days=3 + day)
    await Timeslot.bulk_create([
        Timeslot(program_id=program.id, starts_at=starts + timedelta(minutes=10 * n),
                 ends_at=starts + timedelta(minutes=10 * n + 5), capacity=capacity, reserved=0,
                 created_at=now) for n in range(count)])
    return list(await Timeslot.filter(program_id=program.id).order_by("id")
                .values_list("id", flat=True))


async def round_of(workers: int, *, day: int, args: argparse.Namespace, env: dict[str, str],
                   people: list[int], commands: CommandQueue) -> dict[str, Any]:
    """One crowd queued, then decided by ``workers`` processes."""
    from actors.booking import drain_later

    timeslots = await fresh_timeslots(args.timeslots, args.capacity, day=day)
    fitnus = [sys.executable, "-m", "fitnus", "worker"]
    ports = [free_port() for _ in range(workers)]
    contexts = [process(fitnus, env={**env, "WORKER_METRICS_PORT": str(port)}) for port in ports]
    for context in contexts:
        context.__enter__()
    try:
        for port in ports:
            await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/")
        gate = asyncio.Semaphore(QUEUEING_CONCURRENCY)

        async def queue(n: int) -> None:
            async with gate:
                await commands.send(timeslots[n % len(timeslots)], kind=RESERVE_SEAT,
                                    user_id=people[n])

        await asyncio.gather(*(queue(n) for n in range(args.requests)))
        people_asked = range(people[0], people[-1] + 1)
        cpu_before = cpu_seconds_by_role()
        started = time.time()
        for timeslot_id in timeslots:
            await drain_later(timeslot_id)
        samples = await decided_over_time(people_asked, since=datetime.fromtimestamp(
            started - 1, UTC), expected=args.requests)
        cpu = cpu_spent(cpu_before, cpu_seconds_by_role())
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
    confirmed = await Timeslot.filter(id__in=timeslots).values_list("reserved", flat=True)
    return {"workers": workers, **from_samples(samples, started, args.requests), "cpu": cpu,
            "confirmed": sum(confirmed)}


async def decided_over_time(people: range, *, since: datetime,
                            expected: int) -> list[tuple[float, int]]:
    """(moment, decisions visible) every SAMPLE_SECONDS until all are: a
    decision counts once its batch committed (its row's ``decided_at`` is
    the batch's start)."""
    samples: list[tuple[float, int]] = []
    while not samples or samples[-1][1] < expected:
        await asyncio.sleep(SAMPLE_SECONDS)
        samples.append((time.time(), await Command.filter(
            user_id__gte=people.start, user_id__lt=people.stop, created_at__gte=since).count()))
    return samples


def from_samples(samples: list[tuple[float, int]], started: float,
                 expected: int) -> dict[str, float]:
    """Rate and the moments by which half and 99 % were decided, from t0."""
    def by(share: float) -> float:
        return next(moment for moment, count in samples if count >= share * expected) - started

    return {"seconds": by(1.0), "rate": expected / by(1.0), "p50_ms": 1000 * by(0.5),
            "p99_ms": 1000 * by(0.99)}


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50_ms": 1000 * ordered[len(ordered) // 2],
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


CEILING_SCHEMA = """
CREATE TABLE IF NOT EXISTS scale_timeslot (
  id INT PRIMARY KEY, capacity INT NOT NULL, reserved INT NOT NULL, fence BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS scale_wallet (
  id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL UNIQUE, balance INT NOT NULL,
  held INT NOT NULL, updated_at DATETIME(6) NOT NULL);
CREATE TABLE IF NOT EXISTS scale_lot (
  id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, remaining INT NOT NULL,
  expires_at DATETIME(6) NOT NULL, KEY (user_id, expires_at));
CREATE TABLE IF NOT EXISTS scale_draw (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, lot_id INT NOT NULL, paid_for VARCHAR(128) NOT NULL,
  coupons INT NOT NULL, created_at DATETIME(6) NOT NULL, KEY (paid_for));
CREATE TABLE IF NOT EXISTS scale_reservation (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, timeslot_id INT NOT NULL, user_id INT NOT NULL,
  command_id CHAR(36) NOT NULL UNIQUE, active BOOL NOT NULL, created_at DATETIME(6) NOT NULL,
  KEY (timeslot_id, active), KEY (user_id));
CREATE TABLE IF NOT EXISTS scale_ledger (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, kind VARCHAR(32) NOT NULL,
  amount INT NOT NULL, balance_after INT NOT NULL, reference VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL, UNIQUE KEY (user_id, kind, reference));
CREATE TABLE IF NOT EXISTS scale_command (
  id CHAR(36) PRIMARY KEY, user_id INT NOT NULL, kind VARCHAR(64) NOT NULL,
  status VARCHAR(16) NOT NULL, result JSON, created_at DATETIME(6) NOT NULL,
  decided_at DATETIME(6), KEY (user_id));
CREATE TABLE IF NOT EXISTS scale_notification (
  id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, kind VARCHAR(64) NOT NULL,
  payload JSON NOT NULL, created_at DATETIME(6) NOT NULL, KEY (user_id, id))
"""


async def ceiling(database_url: str, *, timeslots: int, requests: int, capacity: int,
                  people: list[int]) -> dict[str, Any]:
    """MariaDB deciding the same crowd with nothing in front of it."""
    import aiomysql

    parts = urlsplit(database_url)
    pool = await aiomysql.create_pool(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
        password=parts.password or "", db=parts.path.lstrip("/"), maxsize=timeslots,
        autocommit=False)
    try:
        async with pool.acquire() as connection, connection.cursor() as cursor:
            with warnings.catch_warnings():  # "already exists", from the last run
                warnings.simplefilter("ignore", aiomysql.Warning)
                for statement in filter(str.strip, CEILING_SCHEMA.split(";")):
                    await cursor.execute(statement)
            for table in ("scale_timeslot", "scale_wallet", "scale_lot", "scale_draw",
                          "scale_reservation", "scale_ledger", "scale_command",
                          "scale_notification"):
                await cursor.execute(f"DELETE FROM {table}")
            await cursor.executemany("INSERT INTO scale_timeslot VALUES (%s, %s, 0, 0)",
                                     [(n, capacity) for n in range(timeslots)])
            await cursor.executemany("INSERT INTO scale_wallet (user_id, balance, held, "
                                     "updated_at) VALUES (%s, 100, 0, NOW(6))",
                                     [(person,) for person in people])
            await cursor.executemany("INSERT INTO scale_lot (user_id, remaining, expires_at) "
                                     "VALUES (%s, 100, NOW(6) + INTERVAL 1 YEAR)",
                                     [(person,) for person in people])
            await connection.commit()
        per_timeslot = [[people[n] for n in range(requests) if n % timeslots == t]
                        for t in range(timeslots)]
        cpu_before = cpu_seconds_by_role()
        started = time.time()
        decided = await asyncio.gather(*(
            _decide_in_sql(pool, t, asked, capacity) for t, asked in enumerate(per_timeslot)))
        cpu = cpu_spent(cpu_before, cpu_seconds_by_role())
    finally:
        pool.close()
        await pool.wait_closed()
    moments = [moment - started for moments in decided for moment in moments]
    return {"workers": 0, "seconds": max(moments), "rate": len(moments) / max(moments),
            **percentiles(moments), "cpu": cpu,
            "confirmed": min(capacity, requests // timeslots) * timeslots}


async def _decide_in_sql(pool: Any, timeslot: int, asked: list[int],
                         capacity: int) -> list[float]:
    """One batch: the statements a worker's batch makes (23 of them, read
    from MariaDB's general log: the same writes, the reads of the rows
    they need), each multi-row."""
    seated = asked[:capacity]
    now = datetime.now(UTC).replace(tzinfo=None)
    commands = [str(uuid.uuid4()) for _ in asked]
    seats = list(zip(seated, commands, strict=False))
    everyone, some = ", ".join(["%s"] * len(asked)), ", ".join(["%s"] * len(seated))
    async with pool.acquire() as connection, connection.cursor() as cursor:
        await cursor.execute("BEGIN")
        await cursor.execute("SELECT capacity, reserved, fence FROM scale_timeslot "
                             "WHERE id = %s FOR UPDATE", (timeslot,))
        await cursor.execute("UPDATE scale_timeslot SET fence = fence + 1 WHERE id = %s",
                             (timeslot,))
        await cursor.execute(f"SELECT id FROM scale_command WHERE id IN ({everyone})",
                             commands)
        await cursor.execute(f"SELECT user_id, balance, held FROM scale_wallet "
                             f"WHERE user_id IN ({everyone}) ORDER BY user_id FOR UPDATE", asked)
        await cursor.execute(f"SELECT id, remaining FROM scale_lot "
                             f"WHERE user_id IN ({everyone}) AND expires_at < %s", [*asked, now])
        for _ in range(3):  # the schedule conflicts and what people hold here already
            await cursor.execute(f"SELECT id FROM scale_reservation WHERE user_id IN "
                                 f"({everyone}) AND active", asked)
        await cursor.execute(f"UPDATE scale_wallet SET balance = balance - {PRICE}, "
                             f"updated_at = %s WHERE user_id IN ({some})", [now, *seated])
        await cursor.executemany(
            "INSERT INTO scale_ledger (user_id, kind, amount, balance_after, reference, "
            "created_at) VALUES (%s, 'booking_debit', %s, 90, %s, %s)",
            [(person, -PRICE, f"reservation:{command}", now) for person, command in seats])
        await cursor.execute(f"SELECT id, remaining FROM scale_lot "
                             f"WHERE user_id IN ({some}) ORDER BY expires_at", seated)
        await cursor.execute(f"UPDATE scale_lot SET remaining = remaining - {PRICE} "
                             f"WHERE user_id IN ({some})", seated)
        await cursor.executemany(
            "INSERT INTO scale_draw (lot_id, paid_for, coupons, created_at) "
            "VALUES (%s, %s, %s, %s)",
            [(person, f"reservation:{command}", PRICE, now) for person, command in seats])
        await cursor.executemany(
            "INSERT INTO scale_reservation (timeslot_id, user_id, command_id, active, "
            "created_at) VALUES (%s, %s, %s, 1, %s)",
            [(timeslot, person, command, now) for person, command in seats])
        await cursor.execute(f"SELECT id FROM scale_reservation WHERE command_id IN "
                             f"({some})", commands[:len(seated)])
        await cursor.executemany(
            "INSERT INTO scale_command VALUES (%s, %s, 'reserve_seat', %s, %s, %s, %s)",
            [(command, asked[n], "succeeded" if n < len(seated) else "failed",
              json.dumps({"timeslot_id": timeslot}), now, now)
             for n, command in enumerate(commands)])
        await cursor.executemany(
            "INSERT INTO scale_notification (user_id, kind, payload, created_at) "
            "VALUES (%s, %s, %s, %s)",
            [(person, "command.decided", json.dumps({"command_id": command}), now)
             for person, command in zip(asked, commands, strict=True)])
        await cursor.execute("UPDATE scale_timeslot SET reserved = %s WHERE id = %s",
                             (len(seated), timeslot))
        await connection.commit()
    return [time.time()] * len(asked)


def report(label: str, result: dict[str, Any], requests: int) -> str:
    cpu = "  ".join(f"{role} {seconds * 1000 / requests:.2f}"
                    for role, seconds in sorted(result["cpu"].items()))
    return (f"{label:24} {result['seconds']:7.2f} {result['rate']:9.0f} "
            f"{result['p50_ms']:8.0f} {result['p99_ms']:8.0f} {result['confirmed']:6d}"
            f"\n{'':24} CPU ms per decision: {cpu}")


async def main_async(args: argparse.Namespace) -> None:
    from actors.setup import install_broker

    name = f"fitnus_bench_{secrets.token_hex(3)}"
    database_url = f"{MYSQL_URL}/{name}"
    prefix = f"bench-scale-{secrets.token_hex(3)}:"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
           "REDIS_KEY_PREFIX": prefix, "LOG_LEVEL": "WARNING", "WORKER_PROCESSES": "1",
           "FITNUS_VAR_DIR": str(ROOT / "var" / "bench")}
    settings = replace(load_settings(env), jwt_secret=secrets.token_urlsafe(48))
    install_broker(settings, redis_url=REDIS_URL)
    await migrate(database_url)
    counts = [int(count) for count in args.workers.split(",")]
    rounds: list[list[dict[str, Any]]] = []
    try:
        async with database(database_url):
            rounds_needed = args.runs * len(counts)
            # A person of their own for each request: batches of different
            # timeslots lock different wallets, so they can run side by side.
            found, _ = await people_with_coupons(args.requests, PRICE * rounds_needed,
                                                 settings.jwt_secret, tag=secrets.token_hex(3))
            people = [person.id for person in found]
            redis = open_redis(REDIS_URL)
            keys = Keys(prefix)

            async def hold_back(key: int) -> None:
                """The drain messages go out together, at t0."""

            commands = CommandQueue(redis=redis, keys=keys, queue=timeslot_queue(redis, keys),
                                    pending=PendingCommands(redis=redis, keys=keys),
                                    clock=system_clock, schedule_drain=hold_back)
            try:
                for run in range(args.runs):
                    line = [await ceiling(database_url, timeslots=args.timeslots,
                                          requests=args.requests, capacity=args.capacity,
                                          people=people)]
                    for workers in counts:
                        line.append(await round_of(workers, day=len(rounds) * len(counts)
                                                   + len(line), args=args, env=env,
                                                   people=people, commands=commands))
                    rounds.append(line)
                    print(f"run {run + 1}: " + ", ".join(
                        f"{result['workers'] or 'ceiling'}: {result['rate']:.0f}/s "
                        f"({result['confirmed']} seated)" for result in line))
            finally:
                await redis.aclose()
    finally:
        await asyncio.to_thread(drop_database, name)
        await forget_keys(prefix)
    print(f"\n{args.requests} reservations over {args.timeslots} timeslots of "
          f"{args.capacity} seats, queued before t0; medians of {args.runs} runs")
    print(f"{'deciding':24} {'s':>7} {'decided/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'seats':>6}")
    for column, label in enumerate(["MariaDB ceiling (SQL)",
                                    *(f"{count} worker process(es)" for count in counts)]):
        results = [line[column] for line in rounds]
        median = {key: statistics.median(result[key] for result in results)
                  for key in ("seconds", "rate", "p50_ms", "p99_ms")}
        cpu = {role: statistics.median(result["cpu"].get(role, 0.0) for result in results)
               for role in results[0]["cpu"]}
        print(report(label, {**median, "cpu": cpu, "confirmed": results[-1]["confirmed"]},
                     args.requests))
    ceiling_rate = statistics.median(line[0]["rate"] for line in rounds)
    ratios = [statistics.median(line[n + 1]["rate"] for line in rounds) / ceiling_rate
              for n in range(len(counts))]
    print("\nratio to the ceiling: " + ", ".join(
        f"{count} worker(s) {ratio:.2f}" for count, ratio in zip(counts, ratios, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeslots", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--capacity", type=int, default=40)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
