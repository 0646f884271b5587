"""`fitnus worker`: one worker process running dramatiq's Worker in-process.

Not dramatiq's CLI: supervisors (honcho, systemd) signal the whole process
group, so the CLI's worker subprocesses get SIGTERM twice — once from the
supervisor and once forwarded — and the second one kills them mid-message.
Scale by running more `fitnus worker` processes (WORKER_PROCESSES under
`fitnus up`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import dramatiq

from actors.setup import install_broker
from fitnus.config import Settings
from fitnus.logs import configure_logging
from fitnus.redis_client import resolve_redis_url

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_MS = 30_000


def run(settings: Settings) -> None:
    configure_logging(settings.log_level)
    metrics_dir = settings.var_dir.resolve() / "dramatiq-prometheus"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    # dramatiq's Prometheus middleware reads these lower-case names on import.
    os.environ["dramatiq_prom_db"] = str(metrics_dir)  # noqa: SIM112
    broker = install_broker(settings, redis_url=resolve_redis_url(settings), expose_metrics=True)
    broker.emit_after("process_boot")
    _serve_metrics(settings, metrics_dir=str(metrics_dir))

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, worker_threads=settings.worker_threads,
                             worker_timeout=settings.worker_idle_poll_ms)
    worker.start()
    log.info("worker started", extra={"threads": settings.worker_threads})
    stop.wait()
    log.info("worker stopping")
    worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
    broker.close()


def _serve_metrics(settings: Settings, *, metrics_dir: str) -> None:
    """Expose every worker process's dramatiq metrics (a shared multiprocess
    directory) and this process's own (actors.metrics) from whichever
    process on this host binds the port first: one worker process per
    host or container shows all of its own."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from actors.metrics import WorkerMetrics

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    WorkerMetrics(registry).install()
    try:
        start_http_server(
            settings.worker_metrics_port, addr=settings.http_host, registry=registry
        )
    except OSError:
        log.info("worker metrics already served on port %s", settings.worker_metrics_port)
