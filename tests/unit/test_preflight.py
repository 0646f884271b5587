"""`make test` without MariaDB, Redis or RabbitMQ stops at once and says what to start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFLIGHT = ROOT / "tests" / "preflight.py"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PROGRAMS = ("redis-server", "redis-cli", "rabbitmqctl")


def preflight(mysql_url: str, redis_url: str, rabbitmq_url: str, *,
              path: Path) -> subprocess.CompletedProcess[str]:
    """The check with only ``path`` to find programs on."""
    return subprocess.run([sys.executable, str(PREFLIGHT), mysql_url, redis_url, rabbitmq_url],
                          capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "PATH": str(path)})


def programs_in(directory: Path) -> Path:
    """The cluster pass's programs, as stand-ins that do nothing."""
    for program in PROGRAMS:
        (directory / program).write_text("#!/bin/sh\n")
        (directory / program).chmod(0o755)
    return directory


def test_missing_services_are_named_with_the_command_that_starts_them(tmp_path: Path) -> None:
    mysql_port, redis_port, rabbitmq_port = unused_port(), unused_port(), unused_port()
    answer = preflight(f"mysql://root:@127.0.0.1:{mysql_port}",
                       f"redis://127.0.0.1:{redis_port}/0",
                       f"amqp://guest:guest@127.0.0.1:{rabbitmq_port}", path=tmp_path)
    assert answer.returncode == 1
    assert f"MariaDB at 127.0.0.1:{mysql_port}" in answer.stderr
    assert f"Redis at 127.0.0.1:{redis_port}" in answer.stderr
    assert f"RabbitMQ at 127.0.0.1:{rabbitmq_port}" in answer.stderr
    assert "docker compose up -d mariadb redis" in answer.stderr
    assert "apt-get install -y rabbitmq-server redis-server redis-tools" in answer.stderr
    for program in PROGRAMS:  # none on this PATH
        assert f"{program} (apt-get install" in answer.stderr
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"mariadb", "redis"} <= set(services)


def test_services_that_answer_pass(tmp_path: Path) -> None:
    with socket.socket() as mysql, socket.socket() as redis, socket.socket() as rabbitmq:
        for server in (mysql, redis, rabbitmq):
            server.bind(("127.0.0.1", 0))
            server.listen()
        answer = preflight(f"mysql://root:@127.0.0.1:{mysql.getsockname()[1]}",
                           f"redis://127.0.0.1:{redis.getsockname()[1]}/0",
                           f"amqp://guest:guest@127.0.0.1:{rabbitmq.getsockname()[1]}",
                           path=programs_in(tmp_path))
    assert (answer.returncode, answer.stderr) == (0, "")
