from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.errors import Forbidden
from fitnus.wallet.service import WalletView, grant_coupons, ledger_of, wallet_of
from web.keys import CLOCK, SETTINGS, service_zone
from web.pagination import decode_cursor, encode_cursor
from web.routing import Api
from web.schemas import RequestBody, json

api = Api()

MAX_GRANT_COUPONS = 100_000
MAX_VALID_DAYS = 3650


class LotOut(BaseModel):
    coupons_left: int
    expires_at: datetime


class WalletOut(BaseModel):
    balance: int
    held: int
    available: int
    lots: list[LotOut] = Field(description="coupons not yet spent, held or expired, by the "
                                           "lot they came in; spent earliest-expiry first")


class LedgerEntryOut(BaseModel):
    id: int
    kind: str
    amount: int
    balance_after: int
    reference: str
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerEntryOut]
    next_cursor: str | None


class LedgerQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class GrantBody(RequestBody):
    amount: int = Field(ge=1, le=MAX_GRANT_COUPONS)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=200)]
    valid_days: int | None = Field(
        default=None, ge=1, le=MAX_VALID_DAYS,
        description="how long these coupons last (a promotion may end sooner); "
                    "default COUPON_VALIDITY_DAYS")


class UserPath(BaseModel):
    user_id: int = Field(ge=1, le=2**63 - 1)


class IdempotencyHeader(BaseModel):
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=64,
                                                      pattern=r"^[A-Za-z0-9._:-]+$")] | None = (
        Field(default=None, alias="Idempotency-Key",
              description="the same key from the same caller for the same user returns the "
                          "first answer; for another user it is another grant")
    )


def wallet_out(wallet: WalletView, zone: ZoneInfo) -> WalletOut:
    return WalletOut(balance=wallet.balance, held=wallet.held, available=wallet.available,
                     lots=[LotOut(coupons_left=lot.remaining,
                                  expires_at=lot.expires_at.astimezone(zone))
                           for lot in wallet.lots])


@api.route("GET", "/api/v1/me/wallet", tag="wallet", summary="Your coupons", auth=True,
           responses={200: WalletOut}, errors=(401,))
async def my_wallet(request: web.Request, *, principal: Principal) -> web.Response:
    wallet = await wallet_of(principal.user_id, now=request.app[CLOCK].now())
    return json(wallet_out(wallet, service_zone(request)))


@api.route("GET", "/api/v1/me/wallet/ledger", tag="wallet",
           summary="Every change to your coupons, newest first", auth=True, query=LedgerQuery,
           responses={200: LedgerPage}, errors=(400, 401))
async def my_ledger(
    request: web.Request, *, principal: Principal, query: LedgerQuery
) -> web.Response:
    before = decode_cursor(query.cursor, [int])[0] if query.cursor else None
    entries = await ledger_of(principal.user_id, before_id=before, limit=query.limit)
    page, more = entries[: query.limit], len(entries) > query.limit
    zone = service_zone(request)
    return json(LedgerPage(
        items=[
            LedgerEntryOut(id=entry.id, kind=entry.kind.value, amount=entry.amount,
                           balance_after=entry.balance_after, reference=entry.reference,
                           created_at=entry.created_at.astimezone(zone))
            for entry in page
        ],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    ))


@api.route("POST", "/api/v1/admin/users/{user_id}/coupons", tag="wallet",
           summary="Grant coupons to a user (admins)", path_params=UserPath, body=GrantBody,
           headers=IdempotencyHeader, auth=True, responses={201: WalletOut},
           errors=(400, 401, 403, 404))
async def grant(
    request: web.Request, *, path: UserPath, body: GrantBody, headers: IdempotencyHeader,
    principal: Principal,
) -> web.Response:
    if principal.role is not Role.ADMIN:
        raise Forbidden("only admins grant coupons", code="admin_role_required")
    validity = (timedelta(days=body.valid_days) if body.valid_days
                else request.app[SETTINGS].coupon_validity)
    wallet = await grant_coupons(
        granted_by=principal.user_id, user_id=path.user_id, amount=body.amount,
        idempotency_key=headers.idempotency_key or uuid.uuid4().hex,
        now=request.app[CLOCK].now(), valid_for=validity,
    )
    return json(wallet_out(wallet, service_zone(request)), 201)
