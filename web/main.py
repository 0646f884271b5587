"""`fitnus web`: one web process. Several may share the port (SO_REUSEPORT)."""

from __future__ import annotations

from aiohttp import web

from actors.setup import install_broker
from fitnus.config import Settings
from fitnus.logs import configure_logging
from fitnus.redis_client import resolve_redis_url
from web.app import create_app

SHUTDOWN_TIMEOUT_SECONDS = 10.0


def run(settings: Settings) -> None:
    configure_logging(settings.log_level)
    redis_url = resolve_redis_url(settings)
    install_broker(settings, redis_url=redis_url)
    from actors.dispatch import MESSAGES

    app = create_app(settings, redis_url=redis_url, messages=MESSAGES)
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        reuse_port=True,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
