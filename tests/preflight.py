"""Before `make test`: are MariaDB, Redis and RabbitMQ there, and the
redis-server and rabbitmqctl the cluster pass runs? If not, say which is
missing and how to start them, rather than fail later with a stack trace.

    python3 tests/preflight.py mysql://root:@127.0.0.1:3306 redis://127.0.0.1:6379/0 \
        amqp://guest:guest@127.0.0.1:5672
"""

from __future__ import annotations

import shutil
import socket
import sys
from urllib.parse import urlsplit

START_THEM = "docker compose up -d mariadb redis"
# The cluster pass makes a virtual host with rabbitmqctl, so its RabbitMQ is
# the machine's own, as are the redis-server and redis-cli it starts a Redis
# Cluster with.
INSTALL_THEM = "apt-get install -y rabbitmq-server redis-server redis-tools"
PROGRAMS = {"redis-server": "redis-server", "redis-cli": "redis-tools",
            "rabbitmqctl": "rabbitmq-server"}
CONNECT_TIMEOUT_SECONDS = 2


def missing(urls: dict[str, str]) -> list[str]:
    """Each service whose port does not answer: 'MariaDB at 127.0.0.1:3306'."""
    absent = []
    for name, url in urls.items():
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 0)
        try:
            with socket.create_connection(address, timeout=CONNECT_TIMEOUT_SECONDS):
                pass
        except OSError:
            absent.append(f"{name} at {address[0]}:{address[1]}")
    return absent


def main(argv: list[str]) -> int:
    mysql_url, redis_url, rabbitmq_url = argv
    absent = missing({"MariaDB": mysql_url, "Redis": redis_url, "RabbitMQ": rabbitmq_url})
    programs = [f"{program} (apt-get install {package})" for program, package in PROGRAMS.items()
                if shutil.which(program) is None]
    if absent:
        print(f"make test needs {' and '.join(absent)}, and nothing answers there.\n"
              f"Start MariaDB and Redis with:  {START_THEM}\n"
              f"RabbitMQ (and the cluster pass's programs) with:  {INSTALL_THEM}\n"
              "(or point TEST_MYSQL_URL / TEST_REDIS_URL / TEST_RABBITMQ_URL at your own)",
              file=sys.stderr)
    if programs:
        print(f"make test's cluster pass needs {', '.join(programs)}:  {INSTALL_THEM}",
              file=sys.stderr)
    return 1 if absent or programs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
