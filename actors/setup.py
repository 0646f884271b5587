"""The one worker set-up: a broker with our middleware, then the actors."""

from __future__ import annotations

import importlib
import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from actors.runtime import WorkerRuntime
from fitnus.clock import Clock, system_clock
from fitnus.config import Settings
from fitnus.search.backends import CenterIndexFactory, open_center_index

ACTOR_MODULES = ("actors.accounts", "actors.auctions", "actors.booking", "actors.clubs",
                 "actors.commands", "actors.kafka", "actors.payments", "actors.search",
                 "actors.settlement",
                 "actors.waitlist", "actors.wallet")

_installed: RedisBroker | None = None


def install_broker(
    settings: Settings,
    *,
    redis_url: str,
    expose_metrics: bool = False,
    clock: Clock = system_clock,
    center_index_factory: CenterIndexFactory = open_center_index,
) -> RedisBroker:
    """Create the broker, make it current, and declare the actors on it.

    Once per process: actors bind to the broker current when their module is
    imported, so a second broker would silently receive no actors.
    """
    global _installed
    if _installed is not None:
        return _installed
    early = [module for module in ACTOR_MODULES if module in sys.modules]
    if early:
        raise RuntimeError(f"{early} imported before the broker was installed: no actors")
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=redis_url, namespace=settings.dramatiq_namespace
    )
    broker.add_middleware(AsyncIO())
    broker.add_middleware(
        WorkerRuntime(settings=settings, redis_url=redis_url, clock=clock,
                      center_index_factory=center_index_factory)
    )
    if expose_metrics:
        # Imported only here: the module creates its metrics directory on import.
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())
    dramatiq.set_broker(broker)
    for module in ACTOR_MODULES:
        importlib.import_module(module)
    _installed = broker
    return broker
