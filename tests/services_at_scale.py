"""Runs a command against the services FitNus uses past one machine: a Redis
Cluster of three masters (tests/redis_cluster.py) and RabbitMQ on a virtual
host of its own, named to the command by FITNUS_TEST_REDIS_URL and
FITNUS_TEST_BROKER_URL. make test's cluster pass runs the suite's ``cluster``
tests under it:

    python -m tests.services_at_scale pytest -q -m cluster
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.redis_cluster import redis_cluster

RABBITMQ_URL = os.environ.get("FITNUS_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
RABBITMQ_USER = os.environ.get("FITNUS_TEST_RABBITMQ_USER", "guest")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """An AMQP URL on a fresh virtual host: its queues are this run's alone."""
    vhost = f"fitnus-test-{secrets.token_hex(4)}"
    base = RABBITMQ_URL.rstrip("/")
    if base.count("/") > 2:  # a URL naming a virtual host already: the server's root
        base = base.rsplit("/", 1)[0]
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, RABBITMQ_USER, ".*", ".*", ".*")
        yield f"{base}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@contextmanager
def own_broker(broker_url: str) -> Iterator[str]:
    """The broker URL for processes that must not share their messages with
    this test session's own worker: dramatiq's Redis broker keeps them apart
    by key prefix (the URL stays), RabbitMQ only by virtual host (a fresh one,
    for as long as they run)."""
    if not broker_url.startswith("amqp"):
        yield broker_url
        return
    with rabbitmq_vhost() as url:
        yield url


def main(command: list[str]) -> int:
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fitnus-cluster-") as directory, \
            redis_cluster(Path(directory)) as cluster_url, rabbitmq_vhost() as broker_url:
        env = {**os.environ, "FITNUS_TEST_REDIS_URL": cluster_url,
               "FITNUS_TEST_BROKER_URL": broker_url}
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
