"""What actors need at run time, opened once per worker by a middleware."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from tortoise.context import TortoiseContext, _current_context

from fitnus.clock import Clock
from fitnus.config import Settings
from fitnus.db import open_database
from fitnus.keys import Keys
from fitnus.logs import command_id_var
from fitnus.redis_client import RedisClient, open_redis
from fitnus.search.backends import CenterIndexFactory
from fitnus.search.index import CenterIndex


@dataclass(frozen=True, kw_only=True)
class Runtime:
    settings: Settings
    keys: Keys
    redis: RedisClient
    clock: Clock
    center_index: CenterIndex


log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the worker runtime is not open: is WorkerRuntime middleware installed?")
    return _runtime


class WorkerRuntime(dramatiq.Middleware):
    """Opens the database and Redis on the worker's event loop, and enters the
    database context in every worker thread (async actors inherit the
    submitting thread's context variables).

    Must come after dramatiq's AsyncIO middleware, which starts that loop.
    """

    def __init__(
        self, *, settings: Settings, redis_url: str, clock: Clock,
        center_index_factory: CenterIndexFactory,
    ) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.clock = clock
        self.center_index_factory = center_index_factory
        self.database: TortoiseContext | None = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        global _runtime
        loop_thread = get_event_loop_thread()
        assert loop_thread is not None
        self.database = loop_thread.run_coroutine(open_database(self.settings.database_url))
        redis = open_redis(self.redis_url)
        center_index = self.center_index_factory(self.settings, redis)
        loop_thread.run_coroutine(center_index.ensure())
        if self.settings.kafka_bootstrap_servers is None:
            log.info("KAFKA_BOOTSTRAP_SERVERS is not set: domain events are drained to nowhere")
        _runtime = Runtime(
            settings=self.settings,
            keys=Keys(self.settings.redis_key_prefix),
            redis=redis,
            clock=self.clock,
            center_index=center_index,
        )

    def after_worker_thread_boot(self, broker: dramatiq.Broker, thread: Any) -> None:
        assert self.database is not None
        # Active for the thread's lifetime: the thread ends with the worker, and
        # the context is closed in after_worker_shutdown.
        _current_context.set(self.database)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        command_id_var.set(message.kwargs.get("command_id") or message.message_id)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        global _runtime
        if self.database is None or _runtime is None:
            return
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(self._close(self.database, _runtime))
        _runtime = None

    @staticmethod
    async def _close(database: TortoiseContext, opened: Runtime) -> None:
        await database.close_connections()
        await opened.center_index.close()
        await opened.redis.aclose()
