"""The reference every later benchmark divides by.

Starts, on this machine: an aiohttp app with one empty JSON handler, and one
`fitnus web` process on MariaDB + Redis; then drives each with wrk and prints
requests/s (median of several runs) and their ratio.

    .venv/bin/python bench/http_baseline.py [--runs 3] [--seconds 10]

Needs wrk (`apt-get install wrk`), MariaDB on 127.0.0.1:3306 and Redis on
127.0.0.1:6379 (override with BENCH_MYSQL_URL / BENCH_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql://root:@127.0.0.1:3306")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WRK_THREADS = 2
WRK_CONNECTIONS = 64
# The servers measured here get a core of their own and wrk the other: two
# processes sharing two cores otherwise make each run's figure a draw.
SERVER_CPUS = {1}
LOAD_CPUS = {0}


# Which process does what, by its command line; the rest is "other".
CPU_ROLES = (("fitnus web", "web"), ("fitnus worker", "worker"), ("--serve-", "web"),
             ("mariadbd", "mariadb"), ("mysqld", "mariadb"), ("redis-server", "redis"),
             ("wrk", "wrk"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_role() -> dict[str, float]:
    """CPU time (user + system) spent so far by the processes on this machine,
    summed by role: take two readings around a load to see where its cost went."""
    spent: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        role = next((name for marker, name in CPU_ROLES if marker in command), "other")
        spent[role] = spent.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return spent


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per role, between two readings (processes that ended meanwhile are not counted)."""
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in after
            if after[role] - before.get(role, 0.0) > 0.005}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_empty(port: int) -> None:
    """The reference: aiohttp with a handler that does nothing but answer JSON."""
    from aiohttp import web

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/", empty)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def wait_until_up(url: str, deadline_seconds: float = 30) -> None:
    give_up = time.monotonic() + deadline_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our local server
                return
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.1)


@contextmanager
def process(
    command: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)


def wrk(
    url: str,
    seconds: int,
    headers: dict[str, str] | None = None,
    script: str | None = None,
    cpus: set[int] | None = None,
) -> float:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if cpus:
        command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
    if script:
        command += ["-s", script]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"non-2xx answers from {url}:\n{output}")
    line = next(line for line in output.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wrk_with_cpu(
    url: str, seconds: int, server: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    """Requests/s, and the server process's CPU microseconds per request: the
    steadier figure on a box where wrk and the server share two cores."""
    before = cpu_seconds(server)
    rate = wrk(url, seconds, headers, cpus=LOAD_CPUS)
    return rate, (cpu_seconds(server) - before) / (rate * seconds) * 1e6


def http_json(url: str, body: dict[str, str]) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - our local server
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, str] = json.loads(response.read())
        return result


def fitnus_env(port: int, database: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{MYSQL_URL}/{database}", REDIS_URL=REDIS_URL, HTTP_PORT=str(port),
        REDIS_KEY_PREFIX=f"bench-{database}:", JWT_SECRET=secrets.token_urlsafe(48),
        LOG_LEVEL="WARNING", FITNUS_VAR_DIR=str(ROOT / "var" / "bench"),
    )
    return env


async def forget_keys(prefix: str) -> int:
    """Delete a bench's Redis keys (pending-command records live a week): a
    Redis that grew by every run makes the next SCAN slower, the test
    suite's included. The number deleted."""
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += await redis.delete(*batch)
                batch.clear()
        if batch:
            deleted += await redis.delete(*batch)
    finally:
        await redis.aclose()
    return deleted


def drop_database(database: str) -> None:
    from urllib.parse import urlsplit

    import aiomysql

    async def drop() -> None:
        parts = urlsplit(MYSQL_URL)
        connection = await aiomysql.connect(
            host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
            password=parts.password or "",
        )
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        connection.close()

    asyncio.run(drop())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--serve-empty", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_empty:
        serve_empty(args.serve_empty)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")

    empty_port, fitnus_port = free_port(), free_port()
    database = f"fitnus_bench_{secrets.token_hex(3)}"
    env = fitnus_env(fitnus_port, database)
    fitnus = [sys.executable, "-m", "fitnus"]
    subprocess.run([*fitnus, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    try:
        with (
            process([sys.executable, __file__, "--serve-empty", str(empty_port)]) as empty,
            process([*fitnus, "web"], env=env) as web,
        ):
            for server in (empty, web):
                os.sched_setaffinity(server.pid, SERVER_CPUS)
            empty_url = f"http://127.0.0.1:{empty_port}/"
            base = f"http://127.0.0.1:{fitnus_port}"
            wait_until_up(empty_url)
            wait_until_up(f"{base}/healthz")
            email = f"bench-{secrets.token_hex(4)}@bench.example.com"
            http_json(f"{base}/api/v1/auth/signup",
                      {"email": email, "password": "bench-password", "name": "bench"})
            token = http_json(f"{base}/api/v1/auth/login",
                              {"email": email, "password": "bench-password"})["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            targets = {
                "empty aiohttp handler": (empty_url, None, empty.pid),
                "GET /healthz": (f"{base}/healthz", None, web.pid),
                "GET /api/v1/me (JWT + MariaDB)": (f"{base}/api/v1/me", bearer, web.pid),
            }
            rates: dict[str, list[float]] = {name: [] for name in targets}
            costs: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(args.runs):
                for name, (url, headers, server) in targets.items():
                    rate, cost = wrk_with_cpu(url, args.seconds, server, headers)
                    rates[name].append(rate)
                    costs[name].append(cost)
    finally:
        drop_database(database)

    reference = statistics.median(rates["empty aiohttp handler"])
    reference_cost = statistics.median(costs["empty aiohttp handler"])
    print(f"\nwrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.seconds}s, "
          f"median of {args.runs} runs, one process each, {os.cpu_count()} cores; "
          "CPU: the server process's, per request")
    print(f"{'target':32} {'req/s':>8} {'runs':>24} {'ratio':>6} {'CPU µs':>7} {'ratio':>6}")
    for name, values in rates.items():
        median, cost = statistics.median(values), statistics.median(costs[name])
        runs = ", ".join(f"{value:.0f}" for value in values)
        print(f"{name:32} {median:8.0f} {runs:>24} {median / reference:6.2f} {cost:7.1f} "
              f"{reference_cost / cost:6.2f}")


if __name__ == "__main__":
    main()
