"""Tortoise set-up shared by web, worker, scheduler and the CLI.

Each process opens one ``TortoiseContext`` and enters it where its work runs
(a web middleware, a worker middleware), instead of a process-global fallback:
tests run a web app and a worker in one process, each on its own event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import Token
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pymysql
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext, _current_context
from tortoise.migrations.api import migrate as run_migrations

from fitnus.errors import ConfigurationError

APP_LABEL = "fitnus"
MODEL_MODULES = [
    "fitnus.accounts.models",
    "fitnus.commands.models",
    "fitnus.notifications.models",
    "fitnus.centers.models",
    "fitnus.wallet.models",
    "fitnus.booking.models",
    "fitnus.clubs.models",
    "fitnus.waitlist.models",
    "fitnus.payments.models",
    "fitnus.auctions.models",
    "fitnus.events.models",
    "fitnus.batches.models",
    "fitnus.settlement.models",
]
MIGRATIONS_MODULE = "fitnus.migrations"

# READ COMMITTED, not MySQL's REPEATABLE READ: there a plain SELECT reads the
# snapshot taken at the transaction's first plain read, even after waiting
# for a row lock another transaction just released, so a rule checked after
# the lock ("this person holds no overlapping seat": their wallet row) could
# pass in two transactions at once. Each statement here sees what committed
# before it. It also takes no gap locks, and an UPDATE skips rows that do
# not match instead of waiting on them, which keeps batches from deadlocking.
# A DATABASE_URL may set another level (its query string wins).
READ_COMMITTED = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
# MySQL drops idle connections after wait_timeout (8 h by default; often much
# less behind proxies): recycle pooled connections well before that.
MYSQL_DEFAULTS = {"pool_recycle": "1800", "minsize": "1", "maxsize": "20", "charset": "utf8mb4",
                  "init_command": READ_COMMITTED}
# Several local processes share one SQLite file: wait for the writer instead of
# failing with "database is locked".
SQLITE_DEFAULTS = {"busy_timeout": "5000"}


def database_url_with_defaults(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "mysql":
        defaults = MYSQL_DEFAULTS
    elif parts.scheme == "sqlite":
        defaults = SQLITE_DEFAULTS
    else:
        raise ConfigurationError(f"DATABASE_URL scheme must be mysql or sqlite, got {parts.scheme}")
    query = dict(defaults) | dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _connection(database_url: str) -> str | dict[str, Any]:
    url = database_url_with_defaults(database_url)
    if not url.startswith("sqlite"):
        return url
    connection: dict[str, Any] = expand_db_url(url)
    connection["engine"] = "fitnus.sqlite_engine"
    return connection


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# The config `tortoise makemigrations` reads (`-c fitnus.db.MIGRATIONS_CONFIG`):
# migration files are generated from the models, independent of any database.
MIGRATIONS_CONFIG = tortoise_config("sqlite://:memory:")


async def open_database(database_url: str) -> TortoiseContext:
    """Initialise a context; connections open lazily on the loop that first uses them."""
    context = TortoiseContext()
    with activated(context):
        await context.init(config=tortoise_config(database_url))
    return context


@contextmanager
def activated(context: TortoiseContext) -> Iterator[TortoiseContext]:
    """Make ``context`` the current one for this task or thread only.

    ``TortoiseContext.__enter__`` keeps a single reset token on the context
    object, which concurrent requests sharing one context overwrite; this
    keeps the token on the stack instead.
    """
    token = activate(context)
    try:
        yield context
    finally:
        deactivate(token)


def force_index(dialect: str, index: str) -> str:
    """The table hint that makes ``dialect``'s planner read through ``index``."""
    return f"INDEXED BY {index}" if dialect == "sqlite" else f"FORCE INDEX ({index})"


def activate(context: TortoiseContext) -> Token[TortoiseContext | None]:
    """``activated`` without a context manager, for the one hot path (each
    request) where its generator costs more than the context variable."""
    return _current_context.set(context)


def deactivate(token: Token[TortoiseContext | None]) -> None:
    _current_context.reset(token)


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[TortoiseContext]:
    context = await open_database(database_url)
    try:
        with activated(context):
            yield context
    finally:
        await context.close_connections()


async def migrate(database_url: str) -> None:
    """Apply every pending migration; running it again changes nothing."""
    await ensure_database_exists(database_url)
    async with database(database_url):
        await run_migrations(config=tortoise_config(database_url))


async def ensure_database_exists(database_url: str) -> None:
    parts = urlsplit(database_url)
    if parts.scheme != "mysql":
        return
    import aiomysql

    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise ConfigurationError(f"database name {name!r} must be letters, digits and _")
    connection = await aiomysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        connection.close()


# MySQL's ER_LOCK_DEADLOCK: the server chose this transaction as the victim
# and rolled all of it back, so running it again from the start is safe.
MYSQL_DEADLOCK = 1213
# Errors of the moment, not of what was asked: a lock wait that ran out or a
# query interrupted; the server unreachable, gone away, going down, out of
# connections, or read-only for a failover.
MYSQL_PASSING = frozenset({MYSQL_DEADLOCK, 1205, 1317, 1040, 1053, 1927, 4031, 2002, 2003,
                           2006, 2013, 1290, 1792})


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and those it was raised from or while handling. The driver's
    error is often wrapped in tortoise's, and a deadlock met inside a
    savepoint surfaces as the failed rollback to that savepoint, which the
    deadlock's rollback had already discarded."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _mysql_codes(error: BaseException) -> set[int]:
    return {link.args[0] for link in causes(error)
            if isinstance(link, pymysql.err.MySQLError) and link.args
            and isinstance(link.args[0], int)}


def is_deadlock(error: BaseException) -> bool:
    """Whether the database broke a deadlock by rolling this transaction back."""
    return MYSQL_DEADLOCK in _mysql_codes(error)


def is_passing(error: BaseException) -> bool:
    """Whether the error says nothing of the work that met it: trying the
    same again later may well succeed (a lock wait, a database or network
    away for a while)."""
    return bool(_mysql_codes(error) & MYSQL_PASSING) or any(
        # tortoise's DBConnectionError is a ConnectionError; the driver's
        # InterfaceError is a connection it had already lost.
        isinstance(link, ConnectionError | TimeoutError | pymysql.err.InterfaceError)
        for link in causes(error))


async def ping(context: TortoiseContext) -> None:
    await context.connections.get("default").execute_query("SELECT 1")
