"""Before `make test`: are MariaDB and Redis there? If not, say which is
missing and how to start them, rather than fail later with a stack trace.

    python3 tests/preflight.py mysql://root:@127.0.0.1:3306 redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

START_THEM = "docker compose up -d mariadb redis"
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
    mysql_url, redis_url = argv
    absent = missing({"MariaDB": mysql_url, "Redis": redis_url})
    if not absent:
        return 0
    print(f"make test needs {' and '.join(absent)}, and nothing answers there.\n"
          f"Start them with:  {START_THEM}\n"
          "(or point TEST_MYSQL_URL / TEST_REDIS_URL at your own)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
