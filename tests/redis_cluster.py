"""A real Redis Cluster for the tests: three masters from the machine's own
``redis-server`` on free local ports, joined by ``redis-cli --cluster create``.

Memory only, no replicas: the tests need the cluster's rules (a script or
transaction stays in one slot, keys spread over masters, pub/sub across
nodes), not its failover.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ports import free_port

MASTERS = 3
START_SECONDS = 30.0


def _cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], check=True, capture_output=True, text=True,
        timeout=START_SECONDS,
    ).stdout


@contextmanager
def redis_cluster(directory: Path) -> Iterator[str]:
    """A ``redis+cluster://`` URL naming every master, while the cluster runs."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("the machine's redis-server and redis-cli are needed (apt-get install "
                           "redis-server)")
    ports = [free_port() for _ in range(MASTERS)]
    processes = []
    try:
        for port in ports:
            node_dir = directory / str(port)
            node_dir.mkdir(parents=True)
            processes.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                 "--cluster-config-file", "nodes.conf", "--dir", str(node_dir),
                 "--save", "", "--appendonly", "no", "--logfile", str(node_dir / "log")],
                stdout=subprocess.DEVNULL))
        _wait_for(lambda: all(_answers(port) for port in ports), "the nodes did not start")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=START_SECONDS)
        _wait_for(lambda: all("cluster_state:ok" in _cli(port, "cluster", "info")
                              for port in ports), "the cluster did not agree on its slots")
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return _cli(port, "ping").strip() == "PONG"
    except subprocess.CalledProcessError:
        return False


def _wait_for(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.1)
