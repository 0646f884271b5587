"""Runs of the batch jobs: what ran, for which period, how far it got."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class BatchJob(StrEnum):
    DAILY_USAGE = "daily_usage"
    MONTHLY_SETTLEMENT = "monthly_settlement"
    COUPON_EXPIRY = "coupon_expiry"
    NO_SHOWS = "no_shows"


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BatchRun(Model):
    """One run of a batch job, for a period (a Seoul day, a month) or none.

    A period has one run row, unique by (job, period): a second scheduler, a
    retried message and an admin's re-run all find it. Its work goes in
    chunks, each committed with ``cursor`` under this row's lock, so a run
    killed half-way resumes where its last chunk committed."""

    id = fields.BigIntField(primary_key=True)
    job = fields.CharEnumField(BatchJob, max_length=32)
    period = fields.CharField(max_length=16, null=True)
    status = fields.CharEnumField(RunStatus, max_length=16, default=RunStatus.RUNNING)
    rows = fields.BigIntField(default=0)
    # Where the next chunk starts: the last (starts_at, id) it recorded.
    cursor_at = fields.DatetimeField(null=True)
    cursor_id = fields.BigIntField(default=0)
    attempts = fields.IntField(default=1)
    requested_by = fields.BigIntField(null=True)
    error = fields.CharField(max_length=255, null=True)
    started_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "batch_run"
        unique_together = (("job", "period"),)
        indexes = (("status", "updated_at"),)
