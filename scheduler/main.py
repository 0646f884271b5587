"""`fitnus scheduler`: run the triggers while holding the leader lease."""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from actors.setup import install_broker
from fitnus.config import Settings
from fitnus.keys import Keys
from fitnus.leader import LeaderLease
from fitnus.logs import configure_logging
from fitnus.redis_client import open_redis, resolve_redis_url
from scheduler.jobs import Job, jobs

log = logging.getLogger(__name__)


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
    scheduler = AsyncIOScheduler(timezone=settings.time_zone)
    scheduler.add_job(lease.acquire_or_renew, "interval",
                      seconds=settings.scheduler_lease_seconds / 3, id="leader-lease")
    scheduled = jobs(settings.time_zone)
    for job in scheduled:
        scheduler.add_job(_when_leader(lease, job), job.trigger, id=job.name,
                          max_instances=1, coalesce=True)
    await lease.acquire_or_renew()
    scheduler.start()
    log.info("scheduler started", extra={"jobs": [job.name for job in scheduled]})
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await lease.release()
        await redis.aclose()


def _when_leader(lease: LeaderLease, job: Job) -> object:
    def enqueue_if_leader() -> None:
        if lease.is_leader:
            job.enqueue()
            log.info("enqueued", extra={"job": job.name})

    return enqueue_if_leader


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
