"""Settlement for owners and admins: runs asked for, settlements verified
and paid, discrepancies resolved, usage read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from fitnus.accounts.models import User
from fitnus.accounts.tokens import Principal
from fitnus.batches.models import BatchJob, BatchRun, RunStatus
from fitnus.batches.runs import Chunk, Step, open_run, reopen
from fitnus.centers.models import Center, Program
from fitnus.centers.service import managed_center
from fitnus.clock import Clock
from fitnus.errors import Conflict, InvalidInput, NotFound
from fitnus.notifications.service import notify
from fitnus.settlement import rules, verification
from fitnus.settlement.models import (
    Discrepancy,
    DiscrepancyStatus,
    Settlement,
    SettlementStatus,
    UsageRecord,
)
from fitnus.settlement.monthly import PAID, READY, settle_month
from fitnus.settlement.verification import LookUpOrder

MAX_USAGE_DAYS = 366


@dataclass(frozen=True)
class RunRequested:
    run: BatchRun
    # False: the period was done already (and, for a month, nothing is a draft).
    queued: bool


async def request_run(job: BatchJob, period: str | None, *, principal: Principal,
                      clock: Clock, zone: ZoneInfo) -> RunRequested:
    """An admin's run of a job: a finished day or month, or now for the
    period-less jobs. Re-running a done day changes nothing; re-running a
    month recomputes its drafts and leaves verified and paid ones alone."""
    now = clock.now()
    if job in (BatchJob.COUPON_EXPIRY, BatchJob.NO_SHOWS):
        if period is not None:
            raise InvalidInput(f"{job.value} takes no period", code="invalid_period")
        run, _ = await open_run(job, None, clock=clock, requested_by=principal.user_id)
        return RunRequested(run, True)
    if period is None:
        raise InvalidInput(f"{job.value} needs a period", code="invalid_period")
    if job is BatchJob.DAILY_USAGE:
        day = rules.parse_day(period)
        rules.finished(rules.day_period(day, zone), now)
        run, has_work = await open_run(job, day.isoformat(), clock=clock,
                                       requested_by=principal.user_id)
        return RunRequested(run, has_work)
    rules.finished(rules.month_period(period, zone), now)
    run, has_work = await open_run(job, period, clock=clock, requested_by=principal.user_id)
    if not has_work and await Settlement.filter(
            month=period, status=SettlementStatus.DRAFT).exists():
        await reopen(run.id, clock=clock, from_start=True)
        return RunRequested(await BatchRun.get(id=run.id), True)
    return RunRequested(run, has_work)


# The monthly run's steps, by its cursor: settle (draft or recompute, tell
# owners), then check; each step a chunk of its run (fitnus.batches.runs).
SETTLE, CHECK, CHECKED = 0, 1, 2


def monthly_step(month: str, *, default_bp: int, zone: ZoneInfo, clock: Clock,
                 look_up: LookUpOrder | None, sample: int, told: set[int]) -> Step:
    """The monthly job for ``run_in_chunks``; owners told are added to ``told``
    (to ring once the chunk committed)."""
    async def step(run: BatchRun) -> Chunk:
        if run.cursor_id == SETTLE:
            drafted = await settle_month(month, default_bp=default_bp, now=clock.now())
            for owner_id, settlement in drafted.drafts:
                await notify(user_id=owner_id, type=READY,
                             payload=settlement_payload(settlement),
                             dedupe_key=f"{READY}:{settlement.id}", clock=clock)
                told.add(owner_id)
            return Chunk(rows=len(drafted.drafts), done=False, cursor_id=CHECK)
        await check_month(month, zone=zone, now=clock.now(), look_up=look_up, sample=sample)
        return Chunk(rows=0, done=True, cursor_id=CHECKED)

    return step


async def check_month(month: str, *, zone: ZoneInfo, now: datetime,
                      look_up: LookUpOrder | None, sample: int) -> None:
    centers = await verification.centers_in(month, zone=zone)
    for center_id in centers:
        await verification.check_usage(month, center_id, zone=zone, now=now)
    await verification.check_gross(month, centers, now=now)
    await verification.check_payments(month, zone=zone, now=now, look_up=look_up, sample=sample)


def settlement_payload(settlement: Settlement) -> dict[str, object]:
    return {"settlement_id": settlement.id, "center_id": settlement.center_id,
            "month": settlement.month, "payout_krw": settlement.payout_krw}


async def open_discrepancies(settlement: Settlement) -> int:
    """Its center's for the month, and the month's payments'."""
    return await Discrepancy.filter(
        month=settlement.month, status=DiscrepancyStatus.OPEN,
        center_id__in=[settlement.center_id]).count() + await Discrepancy.filter(
        month=settlement.month, status=DiscrepancyStatus.OPEN, center_id=None).count()


async def verify(settlement_id: int, *, principal: Principal, zone: ZoneInfo,
                 clock: Clock) -> Settlement:
    """Checks its center again (usage and gross; payments were checked by the
    monthly run, which must have finished), then verifies it if nothing is
    left open."""
    settlement = await _settlement(settlement_id)
    if settlement.status is not SettlementStatus.DRAFT:
        return settlement
    if not await BatchRun.filter(job=BatchJob.MONTHLY_SETTLEMENT, period=settlement.month,
                                 status=RunStatus.DONE).exists():
        raise Conflict("the month's settlement run has not finished its checks",
                       code="settlement_run_not_done")
    now = clock.now()
    await verification.check_usage(settlement.month, settlement.center_id, zone=zone, now=now)
    await verification.check_gross(settlement.month, [settlement.center_id], now=now)
    async with in_transaction():
        settlement = await Settlement.select_for_update().get(id=settlement_id)
        if settlement.status is not SettlementStatus.DRAFT:
            return settlement
        if await open_discrepancies(settlement):
            raise Conflict("discrepancies are open for this month", code="discrepancies_open")
        settlement.status, settlement.verified_at = SettlementStatus.VERIFIED, now
        settlement.verified_by = principal.user_id
        await settlement.save(update_fields=["status", "verified_at", "verified_by"])
    return settlement


async def pay(settlement_id: int, *, principal: Principal, clock: Clock) -> tuple[Settlement, int]:
    """Verified → paid, once; returns it and its center's owner (told)."""
    now = clock.now()
    async with in_transaction():
        settlement = await Settlement.select_for_update().get_or_none(id=settlement_id)
        if settlement is None:
            raise NotFound("no such settlement", code="settlement_not_found")
        owner_id: int = (await Center.get(id=settlement.center_id)).owner_id  # type: ignore[attr-defined]
        if settlement.status is SettlementStatus.PAID:
            return settlement, owner_id
        if settlement.status is not SettlementStatus.VERIFIED:
            raise Conflict("only a verified settlement is paid", code="settlement_not_verified")
        if await open_discrepancies(settlement):
            raise Conflict("discrepancies are open for this month", code="discrepancies_open")
        settlement.status, settlement.paid_at, settlement.paid_by = (
            SettlementStatus.PAID, now, principal.user_id)
        await settlement.save(update_fields=["status", "paid_at", "paid_by"])
        await notify(user_id=owner_id, type=PAID, payload=settlement_payload(settlement),
                     dedupe_key=f"{PAID}:{settlement.id}", clock=clock)
    return settlement, owner_id


async def resolve(discrepancy_id: int, *, principal: Principal, note: str,
                  clock: Clock) -> Discrepancy:
    discrepancy = await Discrepancy.get_or_none(id=discrepancy_id)
    if discrepancy is None:
        raise NotFound("no such discrepancy", code="discrepancy_not_found")
    await Discrepancy.filter(id=discrepancy_id, status=DiscrepancyStatus.OPEN).update(
        status=DiscrepancyStatus.RESOLVED, note=note, resolved_by=principal.user_id,
        resolved_at=clock.now())
    return await Discrepancy.get(id=discrepancy_id)


async def set_commission(center_id: int, commission_bp: int | None) -> None:
    """For settlements computed from now on; a verified or paid one keeps its rate."""
    if not await Center.filter(id=center_id).update(commission_bp=commission_bp):
        raise NotFound("no such center", code="center_not_found")


async def _settlement(settlement_id: int) -> Settlement:
    settlement = await Settlement.get_or_none(id=settlement_id)
    if settlement is None:
        raise NotFound("no such settlement", code="settlement_not_found")
    return settlement


async def settlements(*, month: str | None, status: SettlementStatus | None,
                      center_ids: list[int] | None = None) -> list[Settlement]:
    query = Settlement.all()
    if month is not None:
        rules.month_days(month)  # refuses a malformed month
        query = query.filter(month=month)
    if status is not None:
        query = query.filter(status=status)
    if center_ids is not None:
        query = query.filter(center_id__in=center_ids)
    return await query.order_by("month", "center_id")


async def owners_settlements(principal: Principal, *, month: str | None) -> list[Settlement]:
    centers = await Center.filter(owner_id=principal.user_id).values_list("id", flat=True)
    return await settlements(month=month, status=None,
                             center_ids=[int(c) for c in centers])  # type: ignore[call-overload]


async def discrepancy_counts(settlements: list[Settlement]) -> dict[int, int]:
    """Open discrepancies that block each: its center's and its month's payments'."""
    months = {s.month for s in settlements}
    open_rows = await Discrepancy.filter(status=DiscrepancyStatus.OPEN, month__in=list(months)
                                         ).group_by("month", "center_id").annotate(
        count=Count("id")).values("month", "center_id", "count")
    counted = {(row["month"], row["center_id"]): row["count"] for row in open_rows}
    return {s.id: counted.get((s.month, s.center_id), 0) + counted.get((s.month, None), 0)
            for s in settlements}


async def discrepancies(*, status: DiscrepancyStatus | None,
                        month: str | None) -> list[Discrepancy]:
    query = Discrepancy.all()
    if status is not None:
        query = query.filter(status=status)
    if month is not None:
        query = query.filter(month=month)
    return await query.order_by("-id").limit(1000)


@dataclass(frozen=True)
class UsageLine:
    record: UsageRecord
    user_name: str
    program: str


async def usage_of(principal: Principal, center_id: int, *, first: date,
                   last: date) -> list[UsageLine]:
    """A center's usage records from ``first`` to ``last`` (Seoul days, inclusive)."""
    await managed_center(principal, center_id)
    if last < first or last - first > timedelta(days=MAX_USAGE_DAYS):
        raise InvalidInput(f"from..to is at most {MAX_USAGE_DAYS} days, from first to last",
                           code="invalid_period")
    records = await UsageRecord.filter(center_id=center_id, day__gte=first,
                                       day__lte=last).order_by("day", "starts_at", "id")
    names = dict(await User.filter(id__in={r.user_id for r in records}).values_list("id", "name"))
    programs = dict(await Program.filter(id__in={r.program_id for r in records}).values_list(
        "id", "name"))
    return [UsageLine(r, str(names.get(r.user_id, "")), str(programs.get(r.program_id, "")))
            for r in records]
