"""The batch jobs: daily usage, monthly settlement, and the runs admins ask for."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import dramatiq

from actors.runtime import runtime
from fitnus.attendance import service as attendance
from fitnus.batches.models import BatchJob, BatchRun, RunStatus
from fitnus.batches.runs import open_run, resumable, run_in_chunks, run_once, stalled_runs
from fitnus.notifications.service import ring
from fitnus.payments.kakaopay import KakaoPay
from fitnus.settlement import rules
from fitnus.settlement.service import monthly_step
from fitnus.settlement.usage import record_usage_step
from fitnus.settlement.verification import LookUpOrder
from fitnus.wallet import service as wallet

log = logging.getLogger(__name__)
# How far back the daily job looks for days it missed.
CATCH_UP_DAYS = 31


@asynccontextmanager
async def kakao_orders() -> AsyncIterator[LookUpOrder | None]:
    """Kakao Pay's order lookup, when it is configured."""
    config = runtime().settings.kakaopay
    if config is None:
        yield None
        return
    async with aiohttp.ClientSession() as session:
        pay = KakaoPay(config, session)

        async def look_up(tid: str) -> dict[str, object]:
            return await pay.order(tid=tid)

        yield look_up


async def work_on(run: BatchRun) -> BatchRun:
    """Whatever is left of one run, by its job."""
    rt = runtime()
    zone = ZoneInfo(rt.settings.time_zone)
    if run.job is BatchJob.DAILY_USAGE:
        day = rules.parse_day(run.period or "")
        step = record_usage_step(day, rules.day_period(day, zone), now=rt.clock.now())
        return await run_in_chunks(run.id, step, clock=rt.clock)
    if run.job is BatchJob.MONTHLY_SETTLEMENT:
        month = run.period or ""
        first, following = rules.month_days(month)
        recording = await record_days(first, following - timedelta(days=1))
        if recording:
            # Drafted now, the month would miss what those days record.
            raise DaysStillRecording(f"{month}: {', '.join(map(str, recording))} still "
                                     "being recorded by another runner; settled on a retry")
        told: set[int] = set()
        async with kakao_orders() as look_up:
            done = await run_in_chunks(run.id, monthly_step(
                month, default_bp=rt.settings.settlement_commission_bp, zone=zone,
                clock=rt.clock, look_up=look_up, sample=rt.settings.settlement_kakao_sample,
                told=told), clock=rt.clock)
        await ring(rt.redis, rt.keys, told)
        return done
    if run.job is BatchJob.COUPON_EXPIRY:
        return await run_once(run.id, lambda: wallet.expire_lots(clock=rt.clock), clock=rt.clock)
    return await run_once(run.id, lambda: attendance.mark_no_shows(clock=rt.clock),
                          clock=rt.clock)


class DaysStillRecording(Exception):
    """A month's days are not all recorded yet: another runner is at one."""


async def record_days(first: date, last: date) -> list[date]:
    """Each day from ``first`` to ``last`` not recorded yet (a day whose
    01:00 run never came: the scheduler or the workers were down); the days
    another runner is recording still."""
    recording = []
    day = first
    while day <= last:
        run, has_work = await open_run(BatchJob.DAILY_USAGE, day.isoformat(),
                                       clock=runtime().clock)
        if has_work and (await work_on(run)).status is not RunStatus.DONE:
            recording.append(day)
        day += timedelta(days=1)
    return recording


@dramatiq.actor(queue_name="maintenance", max_retries=3, min_backoff=5_000)
async def run_batch(run_id: int) -> None:
    """An admin's run, a retry, or one the resume job found stalled."""
    await work_on(await resumable(run_id, clock=runtime().clock))


@dramatiq.actor(queue_name="maintenance", max_retries=3, min_backoff=60_000)
async def record_yesterday() -> None:
    """01:00 in Seoul: the day that just ended, computed now (not at
    start-up), and any day before it the last month missed."""
    rt = runtime()
    yesterday = rules.previous_day(rt.clock.now(), ZoneInfo(rt.settings.time_zone))
    await record_days(yesterday - timedelta(days=CATCH_UP_DAYS), yesterday)


@dramatiq.actor(queue_name="maintenance", max_retries=3, min_backoff=60_000)
async def settle_last_month() -> None:
    """04:00 on the 1st in Seoul: the month that just ended."""
    rt = runtime()
    run, has_work = await open_run(BatchJob.MONTHLY_SETTLEMENT, rules.previous_month(
        rt.clock.now(), ZoneInfo(rt.settings.time_zone)), clock=rt.clock)
    if has_work:
        await work_on(run)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
async def resume_batch_runs() -> None:
    for run in await stalled_runs(clock=runtime().clock):
        log.warning("batch run %s (%s %s) stalled; sending it again", run.id, run.job.value,
                    run.period)
        run_batch.send(run.id)
