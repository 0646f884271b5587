"""The `fitnus` command: one entry point for every process and chore.

Each subcommand imports its process's composition root lazily, so that the
domain package does not depend on the web or worker tiers at import time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fitnus.accounts.models import Role
from fitnus.accounts.passwords import Passwords
from fitnus.config import Settings, load_settings
from fitnus.db import database, migrate
from fitnus.operations import KEYED_KINDS


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
    queues = commands.add_parser("queues", help="the queues as they stand: keyed queues, "
                                 "the workers' queues, commands pending")
    queues.add_argument("--json", action="store_true", help="JSON instead of a table")
    queues.set_defaults(run=_queues)
    queue_commands = queues.add_subparsers(title="queues")
    redrive = queue_commands.add_parser("redrive", help="send a drain message for one keyed "
                                        "queue now (safe at any time)")
    redrive.add_argument("kind", choices=KEYED_KINDS)
    redrive.add_argument("key", type=int)
    redrive.set_defaults(run=_redrive)
    aside = queue_commands.add_parser("set-aside", help="list the requests a keyed queue set "
                                      "aside undecided after they failed on every try")
    aside.add_argument("kind", choices=KEYED_KINDS)
    aside.add_argument("key", type=int)
    aside.add_argument("--clear", action="store_true", help="drop them instead, showing what "
                       "was dropped (their cause dealt with; their senders were told)")
    aside.set_defaults(run=_set_aside)
    dead = queue_commands.add_parser("dead-letters", help="list dramatiq's dead letters")
    dead.add_argument("--requeue", action="store_true", help="send them back to their queues")
    dead.set_defaults(run=_dead_letters)
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
        return await reindex_all(index=index, now=datetime.now(UTC))
    finally:
        await index.close()
        await redis.aclose()


def _messages(settings: Settings) -> Any:
    """The worker-facing side of this process: the broker and what it sends."""
    from actors.setup import install_broker
    from fitnus.redis_client import resolve_redis_url

    install_broker(settings, redis_url=resolve_redis_url(settings))
    from actors.dispatch import MESSAGES

    return MESSAGES


def _queues(settings: Settings, args: argparse.Namespace) -> None:
    from fitnus.keys import Keys
    from fitnus.operations import queues_now
    from fitnus.redis_client import open_redis, resolve_redis_url

    messages = _messages(settings)

    async def show() -> None:
        redis = open_redis(resolve_redis_url(settings))
        try:
            async with database(settings.database_url):
                queues = await queues_now(
                    redis, Keys(settings.redis_key_prefix), worker_queues=messages.worker_queues,
                    redrive_after=timedelta(seconds=settings.command_redrive_after_seconds),
                    now=datetime.now(UTC))
        finally:
            await redis.aclose()
        if args.json:
            print(json.dumps({"keyed": [vars(q) for q in queues.keyed],
                              "dramatiq": [vars(q) for q in queues.workers],
                              "pending_commands": queues.pending_commands}, indent=2))
            return
        print(_table(["kind", "key", "depth", "oldest s", "lease token", "lease left s",
                      "set aside"],
                     [[q.kind, q.key, q.depth, q.oldest_age_s, q.lease_token, q.lease_left_s,
                       q.set_aside] for q in queues.keyed])
              or "no keyed queue holds items or a lease")
        print()
        print(_table(["queue", "ready", "delayed", "dead", "oldest s"],
                     [[q.queue, q.ready, q.delayed, q.dead, q.oldest_age_s]
                      for q in queues.workers]))
        print(f"\ncommands pending past {settings.command_redrive_after_seconds} s: "
              f"{queues.pending_commands}")

    asyncio.run(show())


def _table(header: list[str], rows: list[list[object]]) -> str:
    if not rows:
        return ""
    cells = [header] + [["—" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[n]) for row in cells) for n in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                     .rstrip() for row in cells)


def _redrive(settings: Settings, args: argparse.Namespace) -> None:
    messages = _messages(settings)
    asyncio.run(messages.drain(args.kind)(args.key))
    print(f"drain message sent for {args.kind} {args.key}")


def _set_aside(settings: Settings, args: argparse.Namespace) -> None:
    from fitnus.keys import Keys
    from fitnus.operations import keyed_queue
    from fitnus.redis_client import open_redis, resolve_redis_url

    async def show() -> None:
        redis = open_redis(resolve_redis_url(settings))
        try:
            queue = keyed_queue(redis, Keys(settings.redis_key_prefix), args.kind)
            if args.clear:
                dropped = await queue.take_set_aside(args.key)
                for item in dropped:
                    print(json.dumps(item, ensure_ascii=False))
                print(f"{len(dropped)} dropped")
                return
            for item in await queue.set_aside_items(args.key):
                print(json.dumps(item, ensure_ascii=False))
        finally:
            await redis.aclose()

    asyncio.run(show())


def _dead_letters(settings: Settings, args: argparse.Namespace) -> None:
    import dramatiq

    from actors.dispatch import declared_queues
    from actors.operations import dead_letters, requeue_dead_letters

    _messages(settings)
    broker = dramatiq.get_broker()
    letters = dead_letters(broker, declared_queues())
    print(_table(["queue", "message", "actor", "died at"],
                 [[d.queue, d.message_id, d.actor,
                   datetime.fromtimestamp(d.died_at_ms / 1000, UTC).isoformat()]
                  for d in letters]) or "no dead letters")
    if args.requeue:
        sent = requeue_dead_letters(broker, declared_queues())
        print(f"{sent} sent back to their queues")


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
