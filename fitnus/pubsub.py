"""One pattern subscription per process, fanned out to local waiters.

Messages only say "look again": the database row is the truth, so a lost or
repeated message makes a waiter late or wake twice, never wrong. Waking is
synchronous (Event.set), so one slow waiter never delays the others.

A batch rings many names with one message on the bare prefix, its data the
names separated by spaces: every web process parses one message per batch
rather than one per name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from fitnus.redis_client import RedisClient

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 0.5
SUBSCRIBE_TIMEOUT_SECONDS = 5


async def ring_many(redis: RedisClient, prefix: str, names: Iterable[str]) -> None:
    """Wake the watchers of each name (none holds a space) in one message."""
    joined = " ".join(names)
    if joined:
        await redis.publish(prefix, joined)


async def listen_forever(
    redis: RedisClient, pattern: str, *, on_message: Callable[[dict[str, Any]], None],
    on_subscribed: Callable[[], None],
) -> None:
    """Subscribe to ``pattern`` and hand each message on, resubscribing after
    a lost connection; ``on_subscribed`` runs at each (re)subscription, when
    messages may have been missed in between."""
    while True:
        pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(pattern)
            on_subscribed()
            async for message in pubsub.listen():
                try:
                    on_message(message)
                except Exception:
                    # One message we cannot handle must not end the listening.
                    log.exception("a message on %s could not be handled", pattern)
        except RedisError:
            log.warning("subscription %s lost, reconnecting", pattern, exc_info=True)
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]


class Waiter(Protocol):
    """What a message wakes: an ``asyncio.Event``, or anything woken the same way."""

    def set(self) -> None: ...


W = TypeVar("W", bound=Waiter)


class ChannelListener:
    """Listens to every channel ``<prefix><name>`` and wakes the watchers of ``name``.

    After a lost subscription every watcher is woken once, as messages may
    have been missed while it was down.
    """

    def __init__(self, *, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._watchers: dict[str, set[Waiter]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=f"listener:{self._prefix}")
        await asyncio.wait_for(self._subscribed.wait(), timeout=SUBSCRIBE_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def watch(self, name: str) -> asyncio.Event:
        return self.attach(name, asyncio.Event())

    def attach(self, name: str, waiter: W) -> W:
        """Wake ``waiter`` (call its ``set``) whenever ``name`` is rung."""
        self._watchers[name].add(waiter)
        return waiter

    def unwatch(self, name: str, waiter: Waiter) -> None:
        watchers = self._watchers.get(name)
        if watchers is not None:
            watchers.discard(waiter)
            if not watchers:
                del self._watchers[name]

    async def _listen(self) -> None:
        await listen_forever(self._redis, f"{self._prefix}*", on_message=self._wake,
                             on_subscribed=self._on_subscribed)

    def _on_subscribed(self) -> None:
        if self._subscribed.is_set():
            for watchers in list(self._watchers.values()):
                for waiter in list(watchers):
                    waiter.set()
        self._subscribed.set()

    def _wake(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if not isinstance(channel, str):
            return
        name = channel.removeprefix(self._prefix)
        data = message.get("data")
        names = (name,) if name or not isinstance(data, bytes) else data.decode().split()
        for each in names:
            for waiter in self._watchers.get(each, ()):
                waiter.set()
