"""A listener whose subscription was lost wakes every watcher once it is back."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from fitnus.pubsub import ChannelListener

pytestmark = pytest.mark.portable


async def test_a_lost_subscription_wakes_every_watcher_when_it_is_back(redis: Redis) -> None:
    # Rings sent while it was down are gone: a woken watcher looks again.
    listener = ChannelListener(redis=redis, prefix=f"test-bell-{secrets.token_hex(3)}:")
    await listener.start()
    try:
        watchers = [listener.watch(name) for name in ("1", "2")]
        await asyncio.sleep(0.2)
        assert not any(watcher.is_set() for watcher in watchers)
        await redis.client_kill_filter(_type="pubsub")
        await asyncio.wait_for(asyncio.gather(*(watcher.wait() for watcher in watchers)), 5)
    finally:
        await listener.stop()
