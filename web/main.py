"""`fitnus web`: one web process. Several may share the port (SO_REUSEPORT)."""

from __future__ import annotations

import gc

from aiohttp import web

from actors.setup import install_broker
from fitnus.config import Settings
from fitnus.logs import configure_logging
from fitnus.redis_client import resolve_redis_url
from web.app import create_app

SHUTDOWN_TIMEOUT_SECONDS = 10.0
# A web process holds thousands of long-lived streams, and a full garbage
# collection walks every object they keep: 0.4 s at 10,000 streams, during
# which no stream is written (bench/RESULTS.md, "SSE fan-out"). Full
# collections wait for a thousand younger ones instead of ten; the younger
# generations, where short-lived cycles die, keep Python's defaults.
GC_THRESHOLDS = (700, 10, 1_000)


def run(settings: Settings) -> None:
    configure_logging(settings.log_level)
    gc.set_threshold(*GC_THRESHOLDS)
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
