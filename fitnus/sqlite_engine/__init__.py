"""tortoise's SQLite engine with write transactions that take the lock up front.

tortoise opens transactions with a deferred ``BEGIN``: the first read takes a
shared lock, the first write tries to upgrade it, and if another process wrote
meanwhile SQLite answers "database is locked" at once, without waiting for
the busy timeout (waiting could deadlock). Web, worker and scheduler share one
file in the embedded mode, so every transaction here starts with
``BEGIN IMMEDIATE``: it waits (busy_timeout) for the write lock instead.
Selected by fitnus.db for ``sqlite://`` URLs.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient


def get_client_class(db_info: dict[str, Any]) -> type[SqliteClient]:
    return ImmediateSqliteClient
