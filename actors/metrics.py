"""The worker's own metrics, beside dramatiq's: the keyed queues' batches."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from fitnus import keyed_queue
from fitnus.commands.models import Command
from fitnus.keyed_queue import QueuedItem

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "fitnus_keyed_batch_size", "Requests decided in one batch", ["kind"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500), registry=registry)
        self.batch_seconds = Histogram(
            "fitnus_keyed_batch_duration_seconds",
            "Deciding one batch, its transaction included", ["kind"], registry=registry)
        self.decision_latency = Histogram(
            "fitnus_keyed_decision_latency_seconds",
            "From a request entering its keyed queue to its batch committing", ["kind"],
            buckets=LATENCY_BUCKETS, registry=registry)
        self.decisions = Counter(
            "fitnus_decisions_total", "Commands decided, by command and outcome (the "
            "refusal's code, or succeeded)", ["command", "outcome"], registry=registry)

    def observe(self, kind: str, items: Sequence[QueuedItem], seconds: float) -> None:
        now = time.time()
        self.batch_size.labels(kind).observe(len(items))
        self.batch_seconds.labels(kind).observe(seconds)
        latency = self.decision_latency.labels(kind)
        for item in items:
            enqueued_at = item.payload.get("enqueued_at")
            if isinstance(enqueued_at, int | float):
                latency.observe(max(now - enqueued_at, 0.0))

    def count(self, commands: Sequence[Command]) -> None:
        for command in commands:
            outcome = (command.error or {}).get("code") or command.status.value
            self.decisions.labels(command.kind, outcome).inc()

    def install(self) -> None:
        """From now on, every batch this process decides is counted."""
        global installed
        keyed_queue.batch_observers.append(self.observe)
        installed = self


# This process's, once installed (the worker's); tests leave it None.
installed: WorkerMetrics | None = None


def count_decisions(commands: Sequence[Command]) -> None:
    if installed is not None:
        installed.count(commands)
