"""A heavy user's calendar: 1,000 reservations over a year among 20,000 of
other people; p50/p99 of one month's calendar, and the query plan.

    .venv/bin/python bench/calendar.py [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_baseline import MYSQL_URL, drop_database
from fitnus.accounts.models import Role, User
from fitnus.booking.calendar import calendar_items, reservations_between
from fitnus.booking.models import Reservation, ReservationStatus
from fitnus.centers.models import Center, Program, Timeslot
from fitnus.clock import as_utc
from fitnus.db import database, migrate

HEAVY_RESERVATIONS = 1_000
OTHER_PEOPLE, OTHER_RESERVATIONS_EACH = 200, 100


async def load(start: datetime) -> int:
    tag = secrets.token_hex(3)
    owner = await User.create(email=f"o-{tag}@bench.example.com", name="o", role=Role.OWNER,
                              password_hash="-")
    center = await Center.create(owner_id=owner.id, name="센터", description="", address="서울",
                                 latitude=37.5, longitude=127.0, sports=["gym"],
                                 created_at=start, updated_at=start)
    program = await Program.create(center_id=center.id, name="요가", sport="gym",
                                   price_coupons=10, duration_minutes=60, description="",
                                   created_at=start)
    step = timedelta(days=365) / HEAVY_RESERVATIONS
    await Timeslot.bulk_create([
        Timeslot(program_id=program.id, starts_at=start + step * n,
                 ends_at=start + step * n + timedelta(hours=1), capacity=500, reserved=0,
                 created_at=start)
        for n in range(HEAVY_RESERVATIONS)
    ], batch_size=1000)
    timeslots = await Timeslot.filter(program_id=program.id).order_by("starts_at")
    people = [User(email=f"u{n}-{tag}@bench.example.com", name=f"u{n}", role=Role.USER,
                   password_hash="-") for n in range(OTHER_PEOPLE + 1)]
    await User.bulk_create(people, batch_size=1000)
    users = await User.filter(email__endswith=f"-{tag}@bench.example.com").order_by("id")
    heavy, others = users[0], users[1:]
    rows = [reservation(heavy.id, slot, start) for slot in timeslots]
    rng = random.Random(3)
    for person in others:
        rows += [reservation(person.id, slot, start)
                 for slot in rng.sample(timeslots, OTHER_RESERVATIONS_EACH)]
    await Reservation.bulk_create(rows, batch_size=2000)
    return heavy.id


def reservation(user_id: int, slot: Timeslot, now: datetime) -> Reservation:
    return Reservation(user_id=user_id, timeslot_id=slot.id, status=ReservationStatus.CONFIRMED,
                       active=True, price_coupons=10, starts_at=slot.starts_at,
                       ends_at=slot.ends_at, command_id=uuid.uuid4(), created_at=now)


async def main_async(queries: int) -> None:
    name = f"fitnus_bench_{secrets.token_hex(3)}"
    url = f"{MYSQL_URL}/{name}"
    await migrate(url)
    try:
        async with database(url) as context:
            start = datetime(2027, 1, 1, tzinfo=UTC)
            heavy = await load(start)
            rng = random.Random(5)
            latencies, sizes = [], []
            for _ in range(queries):
                month = start + timedelta(days=rng.uniform(0, 330))
                began = time.perf_counter()
                items = calendar_items(await reservations_between(
                    heavy, starts_from=month, starts_before=month + timedelta(days=31)))
                latencies.append(time.perf_counter() - began)
                sizes.append(len(items))
            latencies.sort()
            month = start + timedelta(days=100)
            sql = Reservation.filter(
                user_id=heavy, status=ReservationStatus.CONFIRMED,
                starts_at__gte=as_utc(month), starts_at__lt=as_utc(month + timedelta(days=31)),
            ).select_related("timeslot__program__center").order_by("starts_at", "id").sql(
                params_inline=True)
            plan = await context.connections.get("default").execute_query_dict("EXPLAIN " + sql)
    finally:
        await asyncio.to_thread(drop_database, name)
    print(f"{queries} month queries for a user with {HEAVY_RESERVATIONS} reservations "
          f"(table: {HEAVY_RESERVATIONS + OTHER_PEOPLE * OTHER_RESERVATIONS_EACH} rows), "
          f"~{statistics.median(sizes):.0f} items each")
    print(f"p50 {statistics.median(latencies) * 1000:.2f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.2f} ms "
          f"(one query, three joins, through tortoise-orm and aiomysql)")
    print("EXPLAIN:")
    for row in plan:
        print("  ", {key: row[key] for key in ("table", "type", "key", "rows", "Extra")})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=300)
    asyncio.run(main_async(parser.parse_args().queries))


if __name__ == "__main__":
    main()
