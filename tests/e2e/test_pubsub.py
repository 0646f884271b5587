"""Doorbells: one name per channel, or a batch of names in one message."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from fitnus.pubsub import ChannelListener, ring_many

pytestmark = [pytest.mark.portable, pytest.mark.cluster]


async def test_a_batch_wakes_each_named_watcher_and_no_other(redis: Redis) -> None:
    prefix = f"test-bell-{secrets.token_hex(3)}:"
    listener = ChannelListener(redis=redis, prefix=prefix)
    await listener.start()
    try:
        named = {name: listener.watch(name) for name in ("7", "8", "9")}
        unnamed = listener.watch("10")
        await ring_many(redis, prefix, ["7", "8", "9", "7"])
        await asyncio.wait_for(asyncio.gather(*(bell.wait() for bell in named.values())), 5)
        assert not unnamed.is_set()
        await redis.publish(f"{prefix}10", "1")  # the single form still works
        await asyncio.wait_for(unnamed.wait(), 5)
        late = listener.watch("11")
        await ring_many(redis, prefix, [])
        await redis.publish(f"{prefix}7", "1")
        await asyncio.sleep(0.2)
        assert not late.is_set()
    finally:
        await listener.stop()
