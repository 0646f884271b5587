"""Commands accepted but not yet decided, kept in Redis.

A flash crowd sends thousands of commands a second; writing a row for each
from the web tier would make MySQL the bottleneck. The row is written by the
worker, in the transaction that decides the command; until then the command
lives here. Fails closed: without Redis no command is accepted.
"""

from __future__ import annotations

import uuid

from fitnus.commands.models import Command, CommandStatus
from fitnus.keyed_queue import Record
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient

# Long enough for any queue to drain; the decided row is the record after that.
PENDING_TTL_SECONDS = 7 * 24 * 3600


class PendingCommands:
    def __init__(self, *, redis: RedisClient, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def record(self, *, command_id: uuid.UUID, user_id: int, kind: str) -> Record:
        """The record, written by the keyed queue just before it queues the
        request (``KeyedQueue.enqueue``)."""
        return Record(key=self._keys.pending_command(str(command_id)),
                      fields={"user_id": user_id, "kind": kind},
                      ttl_seconds=PENDING_TTL_SECONDS)

    async def find(self, command_id: uuid.UUID) -> Command | None:
        """An unsaved Command in state pending, or None."""
        record = await self._redis.hgetall(self._keys.pending_command(str(command_id)))
        if not record:
            return None
        kind = record[b"kind"]
        return Command(
            id=command_id, user_id=int(record[b"user_id"]),
            kind=kind.decode() if isinstance(kind, bytes) else kind,
            status=CommandStatus.PENDING,
        )
