"""Settlement: usage records and settlements for owners; runs, verification,
payment and discrepancies for admins."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from fitnus.accounts.tokens import Principal
from fitnus.batches.models import BatchJob, BatchRun
from fitnus.batches.runs import run_by_id
from fitnus.booking.admin_refunds import refund_kept
from fitnus.centers.service import center_names
from fitnus.notifications.service import ring
from fitnus.settlement import service
from fitnus.settlement.models import Discrepancy, DiscrepancyStatus, Settlement, SettlementStatus
from fitnus.settlement.rules import percent_to_bp
from web.auth import require_admin
from web.keys import CLOCK, KEYS, MESSAGES, REDIS, service_zone
from web.routing import Api
from web.schemas import RequestBody, json
from web.wallet import IdempotencyHeader

api = Api()

Month = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
CSV_TYPE = "text/csv"
CSV_COLUMNS = ("id", "date", "reservation_id", "user_name", "program", "starts_at", "kind",
               "coupons", "amount_krw")



class CenterPath(BaseModel):
    center_id: int = Field(ge=1, le=2**63 - 1)


class UsageQuery(BaseModel):
    from_: date = Field(alias="from", description="first Seoul day, inclusive")
    to: date = Field(description="last Seoul day, inclusive")


class UsageOut(BaseModel):
    id: int
    date: date
    reservation_id: int
    user_name: str
    program: str
    starts_at: datetime
    kind: str
    coupons: int
    amount_krw: int


class UsageList(BaseModel):
    items: list[UsageOut]


@api.route("GET", "/api/v1/owner/centers/{center_id}/usage", tag="settlement",
           summary="A center's usage records by Seoul day (from..to inclusive), for its owner "
                   "or an admin; Accept: text/csv gives CSV (UTF-8 with a BOM)",
           path_params=CenterPath, query=UsageQuery, auth=True,
           responses={200: (UsageList, CSV_TYPE)}, errors=(400, 401, 403, 404))
async def center_usage(request: web.Request, *, path: CenterPath, query: UsageQuery,
                       principal: Principal) -> web.Response:
    lines = await service.usage_of(principal, path.center_id, first=query.from_, last=query.to)
    zone = service_zone(request)
    items = [UsageOut(id=line.record.id, date=line.record.day,
                      reservation_id=line.record.reservation_id, user_name=line.user_name,
                      program=line.program, starts_at=line.record.starts_at.astimezone(zone),
                      kind=line.record.kind.value, coupons=line.record.coupons,
                      amount_krw=line.record.amount_krw) for line in lines]
    if CSV_TYPE in request.headers.get("Accept", ""):
        return _csv(items, f"usage-{path.center_id}-{query.from_}-{query.to}.csv")
    return json(UsageList(items=items))


def _cell(value: object) -> object:
    """A name a spreadsheet would run as a formula is shown as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(items: list[UsageOut], filename: str) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = item.model_dump()
        writer.writerow([_cell(row["starts_at"].isoformat() if column == "starts_at"
                               else row[column]) for column in CSV_COLUMNS])
    # The BOM lets Excel read UTF-8 (Korean names) without asking.
    return web.Response(body=("\ufeff" + out.getvalue()).encode(), content_type=CSV_TYPE,
                        charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class SettlementOut(BaseModel):
    id: int
    center_id: int
    center_name: str
    month: str
    gross_krw: int
    commission_percent: str
    commission_krw: int
    vat_krw: int
    payout_krw: int
    status: str
    discrepancies: int = Field(description="open discrepancies that block it")
    verified_at: datetime | None
    paid_at: datetime | None


class SettlementList(BaseModel):
    items: list[SettlementOut]


async def _settlements_out(settlements: list[Settlement], request: web.Request) -> web.Response:
    counts = await service.discrepancy_counts(settlements)
    names = await center_names({s.center_id for s in settlements})
    return json(SettlementList(items=[_settlement_out(s, counts[s.id], names[s.center_id],
                                                      request) for s in settlements]))


async def _one_settlement_out(settlement: Settlement, open_count: int,
                              request: web.Request) -> web.Response:
    names = await center_names({settlement.center_id})
    return json(_settlement_out(settlement, open_count, names[settlement.center_id], request))


def _settlement_out(settlement: Settlement, open_count: int, center_name: str,
                    request: web.Request) -> SettlementOut:
    zone = service_zone(request)
    return SettlementOut(
        id=settlement.id, center_id=settlement.center_id, center_name=center_name,
        month=settlement.month,
        gross_krw=settlement.gross_krw,
        commission_percent=f"{settlement.commission_bp / 100:g}",
        commission_krw=settlement.commission_krw, vat_krw=settlement.vat_krw,
        payout_krw=settlement.payout_krw, status=settlement.status.value,
        discrepancies=open_count,
        verified_at=settlement.verified_at.astimezone(zone) if settlement.verified_at else None,
        paid_at=settlement.paid_at.astimezone(zone) if settlement.paid_at else None)


class OwnerSettlementQuery(BaseModel):
    month: Month | None = None


@api.route("GET", "/api/v1/owner/settlements", tag="settlement",
           summary="Your centers' settlements, of one month or all", query=OwnerSettlementQuery,
           auth=True, responses={200: SettlementList}, errors=(400, 401))
async def owner_settlements(request: web.Request, *, query: OwnerSettlementQuery,
                            principal: Principal) -> web.Response:
    return await _settlements_out(
        await service.owners_settlements(principal, month=query.month), request)


class AdminSettlementQuery(BaseModel):
    month: Month | None = None
    status: Literal["draft", "verified", "paid"] | None = None


@api.route("GET", "/api/v1/admin/settlements", tag="settlement",
           summary="Settlements by month and status (admins)", query=AdminSettlementQuery,
           auth=True, responses={200: SettlementList}, errors=(400, 401, 403))
async def admin_settlements(request: web.Request, *, query: AdminSettlementQuery,
                            principal: Principal) -> web.Response:
    require_admin(principal)
    return await _settlements_out(
        await service.settlements(month=query.month, status=query.status and SettlementStatus(
            query.status)), request)


class SettlementPath(BaseModel):
    settlement_id: int = Field(ge=1, le=2**63 - 1)


@api.route("POST", "/api/v1/admin/settlements/{settlement_id}/verify", tag="settlement",
           summary="Check the center's usage and gross again, then verify; 409 "
                   "discrepancies_open while any of the month's is open",
           path_params=SettlementPath, auth=True, responses={200: SettlementOut},
           errors=(401, 403, 404, 409))
async def verify_settlement(request: web.Request, *, path: SettlementPath,
                            principal: Principal) -> web.Response:
    require_admin(principal)
    settlement = await service.verify(path.settlement_id, principal=principal,
                                      zone=service_zone(request), clock=request.app[CLOCK])
    return await _one_settlement_out(settlement, await service.open_discrepancies(settlement),
                                     request)


@api.route("POST", "/api/v1/admin/settlements/{settlement_id}/pay", tag="settlement",
           summary="Mark a verified settlement paid (its owner is told); 409 "
                   "settlement_not_verified, discrepancies_open",
           path_params=SettlementPath, auth=True, responses={200: SettlementOut},
           errors=(401, 403, 404, 409))
async def pay_settlement(request: web.Request, *, path: SettlementPath,
                         principal: Principal) -> web.Response:
    require_admin(principal)
    settlement, owner_id = await service.pay(path.settlement_id, principal=principal,
                                             clock=request.app[CLOCK])
    await ring(request.app[REDIS], request.app[KEYS], [owner_id])
    return await _one_settlement_out(settlement, 0, request)


class DiscrepancyQuery(BaseModel):
    status: Literal["open", "resolved"] | None = None
    month: Month | None = None


class DiscrepancyOut(BaseModel):
    id: int
    month: str
    center_id: int | None
    kind: str
    subject: str
    detail: str
    status: str
    note: str | None
    resolved_at: datetime | None


class DiscrepancyList(BaseModel):
    items: list[DiscrepancyOut]


def _discrepancy_out(row: Discrepancy, request: web.Request) -> DiscrepancyOut:
    return DiscrepancyOut(
        id=row.id, month=row.month, center_id=row.center_id, kind=row.kind.value,
        subject=row.subject, detail=row.detail, status=row.status.value, note=row.note,
        resolved_at=row.resolved_at.astimezone(service_zone(request)) if row.resolved_at
        else None)


@api.route("GET", "/api/v1/admin/discrepancies", tag="settlement",
           summary="Differences the verification found (admins)", query=DiscrepancyQuery,
           auth=True, responses={200: DiscrepancyList}, errors=(400, 401, 403))
async def list_discrepancies(request: web.Request, *, query: DiscrepancyQuery,
                             principal: Principal) -> web.Response:
    require_admin(principal)
    rows = await service.discrepancies(
        status=query.status and DiscrepancyStatus(query.status), month=query.month)
    return json(DiscrepancyList(items=[_discrepancy_out(row, request) for row in rows]))


class DiscrepancyPath(BaseModel):
    discrepancy_id: int = Field(ge=1, le=2**63 - 1)


class ResolveBody(RequestBody):
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=500)]


@api.route("POST", "/api/v1/admin/discrepancies/{discrepancy_id}/resolve", tag="settlement",
           summary="Resolve a discrepancy with a note (admins)", path_params=DiscrepancyPath,
           body=ResolveBody, auth=True, responses={200: DiscrepancyOut},
           errors=(400, 401, 403, 404))
async def resolve_discrepancy(request: web.Request, *, path: DiscrepancyPath,
                              body: ResolveBody, principal: Principal) -> web.Response:
    require_admin(principal)
    row = await service.resolve(path.discrepancy_id, principal=principal, note=body.note,
                                clock=request.app[CLOCK])
    return json(_discrepancy_out(row, request))


Percentage = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,2}(\.[0-9]{1,2})?$")]


class CommissionBody(RequestBody):
    percent: Percentage | None = Field(
        description='e.g. "5" or "3.5"; null: the default (SETTLEMENT_COMMISSION_PERCENT)')


class CommissionOut(BaseModel):
    center_id: int
    percent: str | None


@api.route("PUT", "/api/v1/admin/centers/{center_id}/commission", tag="settlement",
           summary="A center's own commission rate for settlements from now on (admins)",
           path_params=CenterPath, body=CommissionBody, auth=True,
           responses={200: CommissionOut}, errors=(400, 401, 403, 404))
async def set_commission(request: web.Request, *, path: CenterPath, body: CommissionBody,
                         principal: Principal) -> web.Response:
    require_admin(principal)
    bp = None if body.percent is None else percent_to_bp(body.percent)
    await service.set_commission(path.center_id, bp)
    return json(CommissionOut(center_id=path.center_id, percent=body.percent))


class ReservationPath(BaseModel):
    reservation_id: int = Field(ge=1, le=2**63 - 1)


class AdminRefundBody(RequestBody):
    coupons: int = Field(ge=1, le=100_000)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=200)]


class AdminRefundOut(BaseModel):
    reservation_id: int
    refunded_coupons: int
    kept_coupons: int = Field(description="what the seat still keeps for its center")


@api.route("POST", "/api/v1/admin/reservations/{reservation_id}/refund", tag="settlement",
           summary="Give back coupons a seat kept, after the fact (admins); the day it "
                   "happens records it as an adjustment of the center's usage. Once per "
                   "Idempotency-Key; 409 refund_exceeds_kept, or session_not_started for "
                   "a booking still ahead (cancel it instead)",
           path_params=ReservationPath, body=AdminRefundBody, headers=IdempotencyHeader,
           auth=True, responses={200: AdminRefundOut}, errors=(400, 401, 403, 404, 409))
async def refund_seat(request: web.Request, *, path: ReservationPath, body: AdminRefundBody,
                      headers: IdempotencyHeader, principal: Principal) -> web.Response:
    require_admin(principal)
    refund = await refund_kept(reservation_id=path.reservation_id, coupons=body.coupons,
                               reason=body.reason, key=headers.idempotency_key or
                               uuid.uuid4().hex, clock=request.app[CLOCK])
    await ring(request.app[REDIS], request.app[KEYS], [refund.user_id])
    return json(AdminRefundOut(reservation_id=refund.reservation_id,
                               refunded_coupons=refund.refunded_coupons,
                               kept_coupons=refund.kept_coupons))


Job = Literal["daily_usage", "monthly_settlement", "coupon_expiry", "no_shows"]


class JobPath(BaseModel):
    job: Job


class RunBody(RequestBody):
    period: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        default=None, description='daily_usage: a finished Seoul day "2026-12-01"; '
                                  'monthly_settlement: a finished month "2026-11"; none for '
                                  "coupon_expiry and no_shows")


class RunOut(BaseModel):
    run_id: int
    job: str
    period: str | None
    status: str
    rows: int
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    detail: str | None = None


def _run_out(run: BatchRun, request: web.Request, detail: str | None = None) -> RunOut:
    zone = service_zone(request)
    return RunOut(run_id=run.id, job=run.job.value, period=run.period, status=run.status.value,
                  rows=run.rows, attempts=run.attempts,
                  started_at=run.started_at.astimezone(zone),
                  finished_at=run.finished_at.astimezone(zone) if run.finished_at else None,
                  detail=detail)


@api.route("POST", "/api/v1/admin/batches/{job}/runs", tag="settlement",
           summary="Run a batch job (admins): 202 once queued; 200 with the run when the "
                   "period is done already and nothing changes; 409 period_not_finished",
           path_params=JobPath, body=RunBody, auth=True, responses={202: RunOut, 200: RunOut},
           errors=(400, 401, 403, 409))
async def request_run(request: web.Request, *, path: JobPath, body: RunBody,
                      principal: Principal) -> web.Response:
    require_admin(principal)
    requested = await service.request_run(BatchJob(path.job), body.period, principal=principal,
                                          clock=request.app[CLOCK], zone=service_zone(request))
    if not requested.queued:
        return json(_run_out(requested.run, request,
                             detail="this period is done already: nothing changes"))
    await request.app[MESSAGES].run_batch(requested.run.id)
    return json(_run_out(requested.run, request), 202)


class RunPath(BaseModel):
    job: Job
    run_id: int = Field(ge=1, le=2**63 - 1)


@api.route("GET", "/api/v1/admin/batches/{job}/runs/{run_id}", tag="settlement",
           summary="A batch run: running, done or failed, and its rows (admins)",
           path_params=RunPath, auth=True, responses={200: RunOut},
           errors=(401, 403, 404))
async def get_run(request: web.Request, *, path: RunPath, principal: Principal) -> web.Response:
    require_admin(principal)
    return json(_run_out(await run_by_id(BatchJob(path.job), path.run_id), request))
