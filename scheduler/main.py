"""`fitnus scheduler`: run the triggers while holding the leader lease."""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from actors.setup import install_broker
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.leader import LeaderLease
from fitnus.logs import configure_logging
from fitnus.redis_client import open_redis, resolve_redis_url
from scheduler.jobs import Job, jobs

log = logging.getLogger(__name__)


class SchedulerMetrics:
    """One registry for the scheduler process: whether it leads, and the jobs it sent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.leader = Gauge("fitnus_scheduler_leader",
                            "1 while this scheduler holds the leader lease", registry=registry)
        self.jobs = Counter("fitnus_scheduler_job_runs_total",
                            "Jobs triggered, by job and outcome (sent, or skipped: not leader)",
                            ["job", "outcome"], registry=registry)


def run(settings: Settings) -> None:
    configure_logging(settings.log_level)
    asyncio.run(serve(settings))


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    redis_url = resolve_redis_url(settings)
    install_broker(settings, redis_url=redis_url)
    redis = open_redis(redis_url)
    lease = LeaderLease(
        redis=redis,
        key=Keys(settings.redis_key_prefix).scheduler_leader(),
        ttl_seconds=settings.scheduler_lease_seconds,
    )
    stop = stop or _stop_on_signals()
    metrics = SchedulerMetrics(CollectorRegistry())
    if settings.scheduler_metrics_port:
        start_http_server(settings.scheduler_metrics_port, registry=metrics.registry)

    async def lead() -> None:
        await lease.acquire_or_renew()
        metrics.leader.set(1 if lease.is_leader else 0)

    scheduler = AsyncIOScheduler(timezone=settings.time_zone)
    scheduler.add_job(lead, "interval", seconds=settings.scheduler_lease_seconds / 3,
                      id="leader-lease")
    scheduled = jobs(settings.time_zone)
    for job in scheduled:
        scheduler.add_job(_when_leader(lease, job, metrics), job.trigger, id=job.name,
                          max_instances=1, coalesce=True)
    await lead()
    scheduler.start()
    log.info("scheduler started", extra={"jobs": [job.name for job in scheduled]})
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await lease.release()
        await redis.aclose()


def _when_leader(lease: LeaderLease, job: Job, metrics: SchedulerMetrics) -> object:
    def enqueue_if_leader() -> None:
        if lease.is_leader:
            job.enqueue()
            metrics.jobs.labels(job.name, "sent").inc()
            log.info("enqueued", extra={"job": job.name})
        else:
            metrics.jobs.labels(job.name, "skipped").inc()

    return enqueue_if_leader


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
