"""Bids on one live auction, and its watchers.

    .venv/bin/python bench/auction_bids.py [--requests 5000] [--bidders 500]
        [--watchers 1000] [--web 2] [--workers 1] [--connections 128] [--runs 3]

1. Bids: --bidders people (each with coupons) send --requests bids at one
   auction through its keyed queue, each person in turn, with wrk as in
   bench/flash_crowd.py; every accepted bid is waited for until decided.
   The bids rise with the crowd (the n-th bids 10 + 20·n coupons), so most
   can count and are queued, as in a live auction; --fixed-body sends one
   proxy bid for all (`{"max_amount": 1000}`), whose late copies a web
   process refuses at the door. In the same run, the floor of the stack:
   an aiohttp handler that only checks the token with pyjwt and makes one
   Redis round trip, same client and load.
2. Watchers: --watchers open streams of the auction
   (`GET /api/v1/auctions/{id}/stream`, one web process, one worker), then
   one bid; the time from sending the bid to each watcher's `auction.bid`
   (which includes deciding it in the queue), and the fan-out alone: from
   the first watcher's event to the 99th percentile's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flash_crowd import Crowd, people_with_coupons, report, run_crowd, run_floor
from bench.http_baseline import MYSQL_URL, REDIS_URL, drop_database, free_port, wait_until_up
from bench.sse import wait_for_event
from fitnus.accounts.models import Role, User
from fitnus.auctions.models import Auction, Bid
from fitnus.auctions.service import QUEUE_KIND
from fitnus.db import database, migrate

ROOT = Path(__file__).resolve().parents[1]
COUPONS = 200_000
RISE = 20
CONNECT_BATCH = 500


async def new_auction() -> int:
    now = datetime.now(UTC)
    owner = await User.create(email=f"owner-{secrets.token_hex(3)}@bench.example.com",
                              name="owner", role=Role.OWNER, password_hash="-")
    auction = await Auction.create(
        created_by_id=owner.id, title="PT 한 달권", description="", starting_price=10,
        starts_at=now, ends_at=now + timedelta(hours=1), soft_close_seconds=0, created_at=now)
    auction_id: int = auction.id
    return auction_id


async def run_bids(args: argparse.Namespace, database_url: str,
                   secret: str) -> tuple[dict[str, Any], list[str]]:
    tokens: list[str] = []

    async def bidding_crowd() -> Crowd:
        auction_id = await new_auction()
        people, issued = await people_with_coupons(args.bidders, COUPONS, secret,
                                                   tag=secrets.token_hex(3))
        tokens.extend(issued[n % len(issued)] for n in range(args.requests))
        if not args.fixed_body:
            # wrk sends each line's own body (bench/lua/crowd.lua).
            tokens[:] = [f'{token}\t{{"amount": {10 + RISE * n}}}'
                         for n, token in enumerate(tokens)]

        async def placed() -> int:
            return await Bid.filter(auction_id=auction_id).count()

        return Crowd(QUEUE_KIND, auction_id, f"/api/v1/auctions/{auction_id}/bids",
                     {"max_amount": 1000}, tokens, range(people[0].id, people[-1].id + 1),
                     placed)

    return await run_crowd(args, database_url, secret, bidding_crowd), tokens


async def open_watcher(port: int, auction_id: int
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**16)
    writer.write(f"GET /api/v1/auctions/{auction_id}/stream HTTP/1.1\r\nHost: bench\r\n\r\n"
                 .encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(status.decode())
    while (await reader.readline()).strip():
        pass  # response headers
    return reader, writer


async def run_watchers(args: argparse.Namespace, database_url: str,
                       secret: str) -> dict[str, float]:
    port = free_port()
    prefix = f"bench-watch-{secrets.token_hex(3)}:"
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, HTTP_PORT=str(port),
               REDIS_KEY_PREFIX=prefix, JWT_SECRET=secret, LOG_LEVEL="WARNING",
               FITNUS_VAR_DIR=str(ROOT / "var" / "bench"))
    fitnus = [sys.executable, "-m", "fitnus"]
    async with database(database_url):
        auction_id = await new_auction()
        _, [token] = await people_with_coupons(1, COUPONS, secret, tag=secrets.token_hex(3))
        web = subprocess.Popen([*fitnus, "web"], env=env, cwd=ROOT)
        worker = subprocess.Popen([*fitnus, "worker"], cwd=ROOT,
                                  env={**env, "WORKER_METRICS_PORT": str(free_port())})
        try:
            await asyncio.to_thread(wait_until_up, f"http://127.0.0.1:{port}/healthz")
            await asyncio.sleep(1)  # let the worker connect
            streams = []
            for start in range(0, args.watchers, CONNECT_BATCH):
                streams += await asyncio.gather(*(
                    open_watcher(port, auction_id)
                    for _ in range(start, min(start + CONNECT_BATCH, args.watchers))))
            waiting = [asyncio.create_task(wait_for_event(reader, b"auction.bid"))
                       for reader, _ in streams]
            async with aiohttp.ClientSession() as session:
                sent_at = time.time()
                async with session.post(
                        f"http://127.0.0.1:{port}/api/v1/auctions/{auction_id}/bids",
                        json={"amount": 10},
                        headers={"Authorization": f"Bearer {token}", "Prefer": "wait=10"}
                ) as answer:
                    assert answer.status == 201, await answer.text()
                    answered_at = time.time()
            arrivals = await asyncio.wait_for(asyncio.gather(*waiting), 30)
            for _, writer in streams:
                writer.close()
        finally:
            for child in (web, worker):
                child.terminate()
                child.wait(timeout=60)
    latencies = sorted(arrival - sent_at for arrival in arrivals)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return {"watchers": len(streams), "answer_ms": (answered_at - sent_at) * 1000,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": p99 * 1000,
            "max_ms": latencies[-1] * 1000,
            # The fan-out itself: from the first watcher's event to the 99th percentile's.
            "spread_p99_ms": (p99 - latencies[0]) * 1000}


async def main_async(args: argparse.Namespace) -> None:
    name = f"fitnus_bench_{secrets.token_hex(3)}"
    database_url = f"{MYSQL_URL}/{name}"
    secret = secrets.token_urlsafe(48)
    await migrate(database_url)
    lines = []
    try:
        for run in range(args.runs):
            bids, tokens = await run_bids(args, database_url, secret)
            floor = await run_floor(args, secret, [token.split("\t")[0] for token in tokens])
            watchers = await run_watchers(args, database_url, secret)
            lines.append((bids, floor, watchers))
            print(f"run {run + 1}: every bid decided {bids['decided_after']:.2f} s after the "
                  f"last answer; {watchers['watchers']} watchers: p99 {watchers['p99_ms']:.1f} ms")
    finally:
        await asyncio.to_thread(drop_database, name)
    print(f"\n{args.requests} {'same' if args.fixed_body else 'rising'} bids from "
          f"{args.bidders} bidders, {args.web} web process(es), {args.workers} worker(s)")
    for number, (bids, floor, watchers) in enumerate(lines, start=1):
        print(report(f"bids (run {number})", bids, args.requests))
        print(report(f"floor: pyjwt + 1 Redis trip (run {number})", floor, args.requests))
        print(f"{'watchers (run ' + str(number) + ')':34} {watchers['watchers']:.0f} streams: "
              f"bid sent -> event p50 {watchers['p50_ms']:.1f} ms, p99 {watchers['p99_ms']:.1f}"
              f" ms, max {watchers['max_ms']:.1f} ms; first -> p99 watcher "
              f"{watchers['spread_p99_ms']:.1f} ms; the bid's own 201 after "
              f"{watchers['answer_ms']:.1f} ms")
    rate = statistics.median(args.requests / b["duration"] for b, _, _ in lines)
    floor_rate = statistics.median(args.requests / f["duration"] for _, f, _ in lines)
    decided = statistics.median(args.requests / (b["duration"] + b["decided_after"])
                                for b, _, _ in lines)
    p50 = statistics.median(b["p50_ms"] for b, _, _ in lines)
    p99 = statistics.median(b["p99_ms"] for b, _, _ in lines)
    watch_p99 = statistics.median(w["p99_ms"] for _, _, w in lines)
    spread = statistics.median(w["spread_p99_ms"] for _, _, w in lines)
    print(f"\nmedians: bids accepted at {rate:.0f}/s ({rate / floor_rate:.2f} of the floor's "
          f"{floor_rate:.0f}/s), p50 {p50:.1f} ms, p99 {p99:.1f} ms; all decided at "
          f"{decided:.0f} bids/s; {args.watchers} watchers: bid sent -> event p99 "
          f"{watch_p99:.1f} ms, first -> p99 watcher {spread:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--bidders", type=int, default=500)
    parser.add_argument("--watchers", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fixed-body", action="store_true")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
