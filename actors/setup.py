"""The one worker set-up: a broker with our middleware, then the actors."""

from __future__ import annotations

import importlib
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from actors.runtime import WorkerRuntime
from fitnus.clock import Clock, system_clock
from fitnus.config import Settings
from fitnus.errors import ConfigurationError
from fitnus.redis_client import is_cluster_url
from fitnus.search.backends import CenterIndexFactory, open_center_index

ACTOR_MODULES = ("actors.accounts", "actors.auctions", "actors.booking", "actors.clubs",
                 "actors.commands", "actors.kafka", "actors.payments", "actors.search",
                 "actors.settlement",
                 "actors.waitlist", "actors.wallet")

AMQP_SCHEMES = ("amqp://", "amqps://")
# A send blocks its caller (the web's event loop too) until RabbitMQ
# confirms it, about a millisecond; a connection RabbitMQ blocks (a memory or
# disk alarm) gives up after this long rather than never. The URL may say
# otherwise.
AMQP_DEFAULTS = {"blocked_connection_timeout": "5", "socket_timeout": "5"}

_installed: dramatiq.Broker | None = None


def broker_url(settings: Settings, *, redis_url: str) -> str:
    """BROKER_URL, or else the app's own Redis when it is a single server."""
    url = settings.broker_url or redis_url
    if is_cluster_url(url):
        raise ConfigurationError(
            "dramatiq's Redis broker cannot run on a Redis Cluster (its scripts name keys "
            "they were not given): set BROKER_URL to amqp://… (RabbitMQ) or a single Redis")
    return url


def with_amqp_defaults(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query=urlencode({**AMQP_DEFAULTS, **query})))


def open_broker(settings: Settings, *, redis_url: str) -> dramatiq.Broker:
    url = broker_url(settings, redis_url=redis_url)
    if url.startswith(AMQP_SCHEMES):
        # Each send waits for RabbitMQ's confirm: a message the web tier was
        # told is sent survives a broker restart (dramatiq declares durable
        # queues and persistent messages).
        return RabbitmqBroker(url=with_amqp_defaults(url), confirm_delivery=True)
    return RedisBroker(url=url, namespace=settings.dramatiq_namespace)  # type: ignore[no-untyped-call]


def install_broker(
    settings: Settings,
    *,
    redis_url: str,
    expose_metrics: bool = False,
    clock: Clock = system_clock,
    center_index_factory: CenterIndexFactory = open_center_index,
) -> dramatiq.Broker:
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
    broker = open_broker(settings, redis_url=redis_url)
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
