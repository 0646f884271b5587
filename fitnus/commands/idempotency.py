"""``Idempotency-Key``: every copy of a command POST gets the first copy's answer.

The first copy claims the key before it does anything (SET NX), so copies
that arrive at the same moment never both act; they wait for the answer the
first one records. A claim lives for ``CLAIM_TTL_SECONDS`` only, so a process
that died between claiming and answering does not hold the key for a day.

Fails closed with the command it guards: without Redis there is no key to
claim and no command to queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from fitnus.errors import Conflict
from fitnus.keys import Keys
from fitnus.redis_client import RedisClient

ANSWER_TTL_SECONDS = 24 * 3600
CLAIM_TTL_SECONDS = 30
# How long a copy waits for the first copy's answer before giving up.
ANSWER_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.01
_CLAIMED = b"claimed"

Answer = dict[str, Any]


class KeyInUse(Conflict):
    code = "idempotency_key_in_use"


class IdempotencyKeys:
    def __init__(self, *, redis: RedisClient, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def first_answer(
        self, *, user_id: int, key: str, answer: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """``answer()`` for the first copy of (user, key); what it returned for
        every later copy. A copy whose first copy failed runs ``answer()`` itself."""
        redis_key = self._keys.idempotency(user_id, key)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ANSWER_WAIT_SECONDS
        while True:
            if await self._redis.set(redis_key, _CLAIMED, nx=True, ex=CLAIM_TTL_SECONDS):
                return await self._answer_first(redis_key, answer)
            stored = await self._redis.get(redis_key)
            if stored is not None and stored != _CLAIMED:
                first: Answer = json.loads(stored)
                return first
            if loop.time() > give_up:
                raise KeyInUse("a request with this Idempotency-Key is still being processed")
            await asyncio.sleep(POLL_SECONDS)

    async def _answer_first(
        self, redis_key: str, answer: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        try:
            result = await answer()
        except BaseException:
            # Nothing was done: a later copy may try afresh. If Redis itself
            # is what failed, the claim runs out within CLAIM_TTL_SECONDS.
            with contextlib.suppress(RedisError):
                await self._redis.delete(redis_key)
            raise
        await self._redis.set(redis_key, json.dumps(result), ex=ANSWER_TTL_SECONDS)
        return result
