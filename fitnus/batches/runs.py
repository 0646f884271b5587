"""The batch run: one row per job and period, worked in chunks under its lock.

A chunk reads from the run's cursor, writes its rows and moves the cursor in
one transaction that holds the run's row lock. So two runners of one period
(two schedulers, a redelivered message, an admin's re-run) never write a
row twice: a runner that finds the row locked leaves the run to the one
holding it (SKIP LOCKED) rather than wait behind it, and a runner killed
half-way leaves the cursor at its last committed chunk, where the next one
resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fitnus.batches.models import BatchJob, BatchRun, RunStatus
from fitnus.clock import Clock, as_utc
from fitnus.errors import NotFound

log = logging.getLogger(__name__)

# A run still "running" with no chunk committed for this long lost its
# runner (killed, or its message lost): the resume job sends it again.
STALLED_AFTER_SECONDS = 300
ERROR_LENGTH = 255


@dataclass(frozen=True)
class Chunk:
    """What one step did: rows written, where the next starts, whether that was all."""

    rows: int
    done: bool
    cursor_at: datetime | None = None
    cursor_id: int = 0


# One step, inside the transaction that holds the run's lock.
Step = Callable[[BatchRun], Awaitable[Chunk]]
# Called inside the same transaction once a chunk is written (progress logs);
# whatever it raises rolls the chunk back, as a crash there would.
ChunkWritten = Callable[[BatchRun], Awaitable[None]]


async def open_run(job: BatchJob, period: str | None, *, clock: Clock,
                   requested_by: int | None = None) -> tuple[BatchRun, bool]:
    """The period's run, created or found; a failed one is opened again.
    Returns it and whether it has work to do (False: done already)."""
    now = clock.now()
    run: BatchRun | None = None
    if period is not None:
        run = await BatchRun.get_or_none(job=job, period=period)
    if run is None:
        try:
            run = await BatchRun.create(job=job, period=period, requested_by=requested_by,
                                        started_at=now, updated_at=now)
            return run, True
        except IntegrityError:
            run = await BatchRun.get(job=job, period=period)
    if run.status is RunStatus.FAILED:
        await reopen(run.id, clock=clock)
        return await BatchRun.get(id=run.id), True
    return run, run.status is RunStatus.RUNNING


async def reopen(run_id: int, *, clock: Clock, from_start: bool = False) -> None:
    """A finished or failed run to be worked again from where its cursor is
    (or, ``from_start``, from the beginning)."""
    start = {"cursor_at": None, "cursor_id": 0} if from_start else {}
    await BatchRun.filter(id=run_id).update(
        status=RunStatus.RUNNING, error=None, finished_at=None, attempts=F("attempts") + 1,
        updated_at=clock.now(), **start)


class RunNotFinished(Exception):
    """The run stopped and is not done: failed in another runner."""


async def run_in_chunks(run_id: int, step: Step, *, clock: Clock,
                        chunk_written: ChunkWritten | None = None) -> BatchRun:
    """Step until a chunk says done; or stop where another runner holds the
    run (it goes on) or finished it. Raises RunNotFinished for a failed one."""
    try:
        while True:
            async with in_transaction():
                run = await BatchRun.select_for_update(skip_locked=True).get_or_none(id=run_id)
                if run is None:
                    return await BatchRun.get(id=run_id)  # another runner is at work on it
                if run.status is RunStatus.FAILED:
                    raise RunNotFinished(f"run {run_id} failed")
                if run.status is not RunStatus.RUNNING:
                    return run
                chunk = await step(run)
                run.rows += chunk.rows
                run.cursor_at, run.cursor_id = chunk.cursor_at, chunk.cursor_id
                run.updated_at = clock.now()
                if chunk.done:
                    run.status, run.finished_at = RunStatus.DONE, run.updated_at
                await run.save(update_fields=["rows", "cursor_at", "cursor_id", "updated_at",
                                              "status", "finished_at"])
                if chunk_written is not None:
                    await chunk_written(run)
            if chunk.done:
                log.info("batch run done", extra={"run_id": run_id, "job": run.job.value,
                                                   "period": run.period, "rows": run.rows})
                return run
    except RunNotFinished:
        raise
    except Exception as error:
        await _failed(run_id, error, clock=clock)
        raise


async def run_once(run_id: int, work: Callable[[], Awaitable[int]], *,
                   clock: Clock) -> BatchRun:
    """A job that is one step of its own (coupon expiry, no-shows), which
    takes its own locks: ``work`` returns how many rows it changed."""
    try:
        rows = await work()
    except Exception as error:
        await _failed(run_id, error, clock=clock)
        raise
    now = clock.now()
    await BatchRun.filter(id=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.DONE, rows=F("rows") + rows, finished_at=now, updated_at=now)
    return await BatchRun.get(id=run_id)


async def _failed(run_id: int, error: Exception, *, clock: Clock) -> None:
    await BatchRun.filter(id=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, error=repr(error)[:ERROR_LENGTH], updated_at=clock.now())


async def resumable(run_id: int, *, clock: Clock) -> BatchRun:
    """A run to work on again (a retry, a resume): a failed one is reopened."""
    if await BatchRun.filter(id=run_id, status=RunStatus.FAILED).exists():
        await reopen(run_id, clock=clock)
    return await BatchRun.get(id=run_id)


async def run_by_id(job: BatchJob, run_id: int) -> BatchRun:
    run = await BatchRun.get_or_none(id=run_id, job=job)
    if run is None:
        raise NotFound("no such run", code="run_not_found")
    return run


async def stalled_runs(*, clock: Clock) -> list[BatchRun]:
    """Runs whose runner stopped without finishing: to be sent again."""
    cutoff = clock.now() - timedelta(seconds=STALLED_AFTER_SECONDS)
    return await BatchRun.filter(status=RunStatus.RUNNING, updated_at__lt=as_utc(cutoff))
