"""The flash crowd for a club meetup: 10,000 members press "join" within about
a second for 50 places, through the meetup's keyed queue.

    .venv/bin/python bench/meetup_join.py [--requests 10000] [--web 2] [--workers 1]
        [--connections 128] [--runs 3]

The flash-crowd bench's shape (bench/flash_crowd.py: the same wrk client, the
same processes, the same floor of the stack measured in the same run), for
POST /api/v1/meetups/{id}/attendees. The web tier checks membership in
MariaDB for each request (no fast path remembers a full meetup yet), so its
figures read beside the booking figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flash_crowd import Crowd, people_with_coupons, report, run_crowd, run_floor
from bench.http_baseline import MYSQL_URL, drop_database
from fitnus.accounts.models import Role, User
from fitnus.clubs.meetups import QUEUE_KIND
from fitnus.clubs.models import Club, ClubMember, Meetup, MeetupAttendee, MemberRole
from fitnus.db import migrate

ROOT = Path(__file__).resolve().parents[1]
PLACES = 50
FEE = 10


async def prepare(count: int, secret: str) -> tuple[int, list[str], range]:
    """A club with ``count`` members, each with the fee, and a 50-place meetup."""
    now = datetime.now(UTC)
    tag = secrets.token_hex(3)
    leader = await User.create(email=f"leader-{tag}@bench.example.com", name="leader",
                               role=Role.USER, password_hash="-")
    club = await Club.create(name=f"bench {tag}", name_key=f"bench {tag}", description="",
                             sports=["running"], leader_id=leader.id, member_count=count + 1,
                             created_at=now, updated_at=now)
    meetup = await Meetup.create(club_id=club.id, title="한정 세션", place="한강",
                                 starts_at=now + timedelta(days=2),
                                 ends_at=now + timedelta(days=2, hours=1), capacity=PLACES,
                                 joined=0, fee_coupons=FEE, created_at=now)
    people, issued = await people_with_coupons(count, FEE, secret, tag=tag)
    await ClubMember.bulk_create([ClubMember(club_id=club.id, user_id=p.id,
                                             role=MemberRole.MEMBER, joined_at=now)
                                  for p in people], batch_size=2000)
    return meetup.id, issued, range(people[0].id, people[-1].id + 1)


async def run_meetup(args: argparse.Namespace, database_url: str,
                     secret: str) -> tuple[dict[str, Any], list[str]]:
    tokens: list[str] = []

    async def meetup_crowd() -> Crowd:
        meetup_id, issued, people = await prepare(args.requests, secret)
        tokens.extend(issued)

        async def confirmed() -> int:
            return await MeetupAttendee.filter(meetup_id=meetup_id, active=True).count()

        return Crowd(QUEUE_KIND, meetup_id, f"/api/v1/meetups/{meetup_id}/attendees", {},
                     issued, people, confirmed)

    return await run_crowd(args, database_url, secret, meetup_crowd), tokens


async def main_async(args: argparse.Namespace) -> None:
    name = f"fitnus_bench_{secrets.token_hex(3)}"
    database_url = f"{MYSQL_URL}/{name}"
    secret = secrets.token_urlsafe(48)
    await migrate(database_url)
    lines = []
    try:
        for run in range(args.runs):
            meetup, tokens = await run_meetup(args, database_url, secret)
            floor = await run_floor(args, secret, tokens)
            lines.append((meetup, floor))
            print(f"run {run + 1}: every join decided {meetup['decided_after']:.2f} s after the "
                  "last answer")
    finally:
        await asyncio.to_thread(drop_database, name)
    print(f"\n{args.requests} members, {args.web} web process(es), {args.workers} worker(s), "
          f"{PLACES} places")
    for number, (meetup, floor) in enumerate(lines, start=1):
        print(report(f"meetup join (run {number})", meetup, args.requests))
        print(report(f"floor: pyjwt + 1 Redis trip (run {number})", floor, args.requests))
    fired = statistics.median(m["duration"] for m, _ in lines)
    p99 = statistics.median(m["p99_ms"] for m, _ in lines)
    floor_fired = statistics.median(f["duration"] for _, f in lines)
    print(f"\nmedians: fired in {fired:.2f} s, p99 {p99:.1f} ms; the floor fired in "
          f"{floor_fired:.2f} s ({fired / floor_fired:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
