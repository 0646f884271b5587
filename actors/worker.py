"""The module `fitnus worker` hands to dramatiq's CLI (`dramatiq actors.worker`).

dramatiq imports it in every worker process to find the broker, so this is
the worker's composition root and, unlike actor modules, does its set-up on
import.
"""

from __future__ import annotations

from actors.setup import install_broker
from fitnus.config import load_settings
from fitnus.logs import configure_logging
from fitnus.redis_client import resolve_redis_url

settings = load_settings()
configure_logging(settings.log_level)
broker = install_broker(settings, redis_url=resolve_redis_url(settings), expose_metrics=True)
