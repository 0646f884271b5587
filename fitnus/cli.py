"""The `fitnus` command: one entry point for every process and chore.

Each subcommand imports its process's composition root lazily, so that the
domain package does not depend on the web or worker tiers at import time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from fitnus.accounts.models import Role
from fitnus.accounts.passwords import Passwords
from fitnus.config import Settings, load_settings
from fitnus.db import database, migrate


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        sys.exit(2)
    args.run(load_settings(), args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fitnus", description=__doc__)
    commands = parser.add_subparsers(title="commands")
    for name, run, help_text in (
        ("up", _up, "migrate, load demo data, run web + worker + scheduler until Ctrl-C"),
        ("web", _web, "run one web process"),
        ("worker", _worker, "run the dramatiq workers"),
        ("scheduler", _scheduler, "run the scheduler"),
        ("migrate", _migrate, "apply pending database migrations (idempotent)"),
        ("demo-data", _demo_data, "load demo accounts (idempotent)"),
    ):
        commands.add_parser(name, help=help_text).set_defaults(run=run)
    search = commands.add_parser("search", help="the search index").add_subparsers(title="search")
    search.add_parser("reindex", help="rebuild the search index from the database").set_defaults(
        run=_reindex
    )
    users = commands.add_parser("users", help="manage accounts").add_subparsers(title="users")
    admin = users.add_parser("create-admin", help="create an admin, or reset one's password")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.set_defaults(run=_create_admin)
    return parser


def _passwords(settings: Settings) -> Passwords:
    return Passwords(
        time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib
    )


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    asyncio.run(migrate(settings.database_url))
    print("migrations applied")


def _demo_data(settings: Settings, args: argparse.Namespace) -> None:
    from zoneinfo import ZoneInfo

    from fitnus.clock import system_clock
    from fitnus.demo import load_demo_data

    async def load() -> None:
        async with database(settings.database_url):
            accounts = await load_demo_data(
                passwords=_passwords(settings), clock=system_clock,
                time_zone=ZoneInfo(settings.time_zone),
            )
            indexed = await _reindex_everything(settings)
        print(f"demo data loaded; {indexed} centers in the {settings.search_backend} index")
        print("demo accounts (email / password / role):")
        for account in accounts:
            print(f"  {account.email} / {account.password} / {account.role.value}")

    asyncio.run(load())


def _create_admin(settings: Settings, args: argparse.Namespace) -> None:
    from fitnus.accounts.service import create_account

    async def create() -> None:
        async with database(settings.database_url):
            user = await create_account(
                passwords=_passwords(settings), email=args.email, password=args.password,
                name=args.name, role=Role.ADMIN,
            )
        print(f"admin {user.email} (id {user.id}) ready")

    asyncio.run(create())


def _reindex(settings: Settings, args: argparse.Namespace) -> None:
    async def reindex() -> None:
        async with database(settings.database_url):
            indexed = await _reindex_everything(settings)
        print(f"{indexed} centers indexed on {settings.search_backend}")

    asyncio.run(reindex())


async def _reindex_everything(settings: Settings) -> int:
    from fitnus.redis_client import open_redis, resolve_redis_url
    from fitnus.search.backends import open_center_index
    from fitnus.search.service import reindex_all

    redis = open_redis(resolve_redis_url(settings))
    index = open_center_index(settings, redis)
    try:
        await index.ensure()
        return await reindex_all(index=index)
    finally:
        await index.close()
        await redis.aclose()


def _web(settings: Settings, args: argparse.Namespace) -> None:
    from web.main import run

    run(settings)


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    from actors.main import run

    run(settings)


def _scheduler(settings: Settings, args: argparse.Namespace) -> None:
    from scheduler.main import run

    run(settings)


def _up(settings: Settings, args: argparse.Namespace) -> None:
    from honcho.manager import Manager

    from fitnus.redis_client import resolve_redis_url

    environment = dict(os.environ)
    environment["REDIS_URL"] = resolve_redis_url(settings)
    environment["JWT_SECRET"] = settings.jwt_secret
    _migrate(settings, args)
    _demo_data(settings, args)
    print(f"FitNus on http://{settings.http_host}:{settings.http_port} (Ctrl-C stops everything)")
    sys.stdout.flush()
    manager = Manager()
    program = [sys.executable, "-m", "fitnus"]
    for index in range(settings.web_processes):
        manager.add_process(f"web.{index + 1}", _shell(*program, "web"), env=environment)
    for index in range(settings.worker_processes):
        manager.add_process(f"worker.{index + 1}", _shell(*program, "worker"), env=environment)
    manager.add_process("scheduler.1", _shell(*program, "scheduler"), env=environment)
    manager.loop()
    if settings.redis_url is None:
        from fitnus.embedded_redis import stop_embedded_redis

        stop_embedded_redis(settings.var_dir)
    sys.exit(manager.returncode)


def _shell(*words: str) -> str:
    """honcho runs commands through a shell: exec, so signals reach the process."""
    import shlex

    return "exec " + " ".join(shlex.quote(word) for word in words)
