"""A local Kakao Pay that speaks both API generations as documented: the
current one (open-api.kakaopay.com/online/v1/payment/*, JSON,
``Authorization: SECRET_KEY …``) and the older one (kapi.kakao.com/v1/payment/*,
form-encoded, ``Authorization: KakaoAK …``). It refuses what the real service
refuses, keeps its own ledger of what it approved and cancelled (the other
side of the reconciliation), and injects faults on request.

Run it alone for the demo: ``python -m tests.fakes.kakaopay --port 8090``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

SECRET_KEY = "DEV-fitnus-test-secret-key"
ADMIN_KEY = "fitnus-test-admin-key"
TEST_CID = "TC0ONETIME"
OPEN_API = "/online/v1/payment"
KAPI = "/v1/payment"
STEPS = ("ready", "approve", "order", "cancel")


@dataclass
class Payment:
    tid: str
    cid: str
    partner_order_id: str
    partner_user_id: str
    item_name: str
    quantity: int
    total_amount: int
    tax_free_amount: int
    approval_url: str
    cancel_url: str
    fail_url: str
    created_at: str
    status: str = "READY"
    pg_token: str | None = None
    aid: str | None = None
    approved_at: str | None = None
    canceled_amount: int = 0

    @property
    def approved_amount(self) -> int:
        return self.total_amount if self.aid is not None else 0

    @property
    def cancel_available_amount(self) -> int:
        return self.approved_amount - self.canceled_amount


@dataclass
class Fault:
    kind: str  # "timeout" (done, answered late), "5xx" (not done), "decline" (4xx)
    delay_seconds: float = 0.0


@dataclass
class FakeKakaoPay:
    """The fake's state; ``app()`` serves it."""

    payments: dict[str, Payment] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (generation, step)
    # Where the person's payment page is served: this server, as called.
    origin: str = ""
    # The next approve charges this much more than ready said (a misbehaving
    # gateway): the merchant must pay it back, not credit it.
    overcharge_next: int = 0
    # Kakao refuses a cancel whose cancel_available_amount is not what is
    # left; a control switches that guard off.
    guard_cancels: bool = True

    def fail_next(self, step: str, kind: str, *, delay_seconds: float = 0.0) -> None:
        assert step in STEPS, step
        self.faults.setdefault(step, []).append(Fault(kind, delay_seconds))

    def calls_to(self, step: str) -> int:
        return sum(1 for _, called in self.calls if called == step)

    def by_order(self, partner_order_id: str) -> Payment | None:
        return next((payment for payment in self.payments.values()
                     if payment.partner_order_id == partner_order_id), None)

    def app(self) -> web.Application:
        app = web.Application()
        for prefix, generation in ((OPEN_API, "open-api"), (KAPI, "kapi")):
            for step in STEPS:
                app.router.add_post(f"{prefix}/{step}", self._endpoint(generation, step))
        app.router.add_get("/pay/{tid}", self._payment_page)
        return app

    # --- The merchant API -------------------------------------------------------------

    def _endpoint(self, generation: str, step: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            params = await _params(request, generation)
            if isinstance(params, web.Response):
                return params
            self.calls.append((generation, step))
            self.origin = str(request.url.origin())
            faults = self.faults.get(step) or []
            fault = faults.pop(0) if faults else None
            if fault is not None and fault.kind == "5xx":
                return _error(500, -9798, "internal server error")
            if fault is not None and fault.kind == "decline":
                return _error(400, -780, "approval failure!",
                              method_result_code="8999", method_result_message="거절")
            answer = getattr(self, f"_{step}")(params)
            if fault is not None and fault.kind == "timeout":
                # Done on this side; the answer comes too late for the caller.
                await asyncio.sleep(fault.delay_seconds)
            return answer

        return handle

    def _ready(self, params: dict[str, str]) -> web.Response:
        missing = [name for name in ("cid", "partner_order_id", "partner_user_id", "item_name",
                                     "quantity", "total_amount", "tax_free_amount",
                                     "approval_url", "cancel_url", "fail_url")
                   if not params.get(name)]
        if missing:
            return _error(400, -2, f"invalid request: {', '.join(missing)}")
        if params["cid"] != TEST_CID:
            return _error(400, -701, "unregistered cid")
        tid = "T" + secrets.token_hex(9)
        payment = Payment(
            tid=tid, cid=params["cid"], partner_order_id=params["partner_order_id"],
            partner_user_id=params["partner_user_id"], item_name=params["item_name"],
            quantity=int(params["quantity"]), total_amount=int(params["total_amount"]),
            tax_free_amount=int(params["tax_free_amount"]),
            approval_url=params["approval_url"], cancel_url=params["cancel_url"],
            fail_url=params["fail_url"], created_at=_now())
        self.payments[tid] = payment
        page = f"{self.origin}/pay/{tid}"
        return web.json_response({
            "tid": tid, "next_redirect_pc_url": page, "next_redirect_mobile_url": page,
            "next_redirect_app_url": page, "android_app_scheme": "kakaotalk://",
            "ios_app_scheme": "kakaotalk://", "created_at": payment.created_at})

    def _approve(self, params: dict[str, str]) -> web.Response:
        payment = self.payments.get(params.get("tid", ""))
        if payment is None or payment.cid != params.get("cid"):
            return _error(400, -702, "invalid tid")
        if (params.get("partner_order_id") != payment.partner_order_id
                or params.get("partner_user_id") != payment.partner_user_id):
            return _error(400, -705, "partner_order_id or partner_user_id mismatch")
        if "total_amount" in params and int(params["total_amount"]) != payment.total_amount:
            return _error(400, -706, "total_amount differs from ready")
        if payment.status == "SUCCESS_PAYMENT":
            return _error(400, -703, "already approved payment")
        if payment.pg_token is None or payment.status != "AUTH_PASSWORD":
            return _error(400, -780, "payment not authenticated yet")
        if params.get("pg_token") != payment.pg_token:
            return _error(400, -780, "invalid pg_token")
        payment.status, payment.aid, payment.approved_at = (
            "SUCCESS_PAYMENT", "A" + secrets.token_hex(9), _now())
        payment.total_amount += self.overcharge_next
        self.overcharge_next = 0
        return web.json_response({
            "aid": payment.aid, "tid": payment.tid, "cid": payment.cid,
            "partner_order_id": payment.partner_order_id,
            "partner_user_id": payment.partner_user_id, "payment_method_type": "MONEY",
            "amount": _amount(payment.total_amount, payment.tax_free_amount),
            "item_name": payment.item_name, "quantity": payment.quantity,
            "created_at": payment.created_at, "approved_at": payment.approved_at})

    def _order(self, params: dict[str, str]) -> web.Response:
        payment = self.payments.get(params.get("tid", ""))
        if payment is None or payment.cid != params.get("cid"):
            return _error(400, -702, "invalid tid")
        return web.json_response({
            "tid": payment.tid, "cid": payment.cid, "status": payment.status,
            "partner_order_id": payment.partner_order_id,
            "partner_user_id": payment.partner_user_id, "payment_method_type": "MONEY",
            "amount": _amount(payment.total_amount, payment.tax_free_amount),
            "canceled_amount": _amount(payment.canceled_amount, 0),
            "cancel_available_amount": _amount(payment.cancel_available_amount, 0),
            "item_name": payment.item_name, "quantity": payment.quantity,
            "created_at": payment.created_at, "approved_at": payment.approved_at,
            "aid": payment.aid})

    def _cancel(self, params: dict[str, str]) -> web.Response:
        payment = self.payments.get(params.get("tid", ""))
        if payment is None or payment.cid != params.get("cid"):
            return _error(400, -702, "invalid tid")
        if payment.aid is None:
            return _error(400, -721, "payment not approved")
        amount = int(params.get("cancel_amount") or 0)
        guard = params.get("cancel_available_amount")
        if (self.guard_cancels and guard is not None
                and int(guard) != payment.cancel_available_amount):
            return _error(400, -722, "cancel_available_amount mismatch")
        if not 0 < amount <= payment.cancel_available_amount:
            return _error(400, -723, "cancel amount exceeds what is available")
        payment.canceled_amount += amount
        payment.status = ("CANCEL_PAYMENT" if payment.cancel_available_amount == 0
                          else "PART_CANCEL_PAYMENT")
        return web.json_response({
            "aid": payment.aid, "tid": payment.tid, "cid": payment.cid,
            "status": payment.status, "partner_order_id": payment.partner_order_id,
            "amount": _amount(payment.total_amount, payment.tax_free_amount),
            "approved_cancel_amount": _amount(amount, 0),
            "canceled_amount": _amount(payment.canceled_amount, 0),
            "cancel_available_amount": _amount(payment.cancel_available_amount, 0),
            "canceled_at": _now()})

    # --- The person's payment page ----------------------------------------------------

    async def _payment_page(self, request: web.Request) -> web.Response:
        """The person authenticates in the Kakao app (``?outcome=cancel|fail``
        to do otherwise); the browser goes on to the merchant's URL."""
        payment = self.payments.get(request.match_info["tid"])
        if payment is None:
            raise web.HTTPNotFound()
        outcome = request.query.get("outcome", "approve")
        if outcome == "cancel":
            payment.status = "QUIT_PAYMENT"
            raise web.HTTPFound(payment.cancel_url)
        if outcome == "fail":
            payment.status = "FAIL_PAYMENT"
            raise web.HTTPFound(payment.fail_url)
        payment.status, payment.pg_token = "AUTH_PASSWORD", secrets.token_hex(10)
        raise web.HTTPFound(_with_query(payment.approval_url, pg_token=payment.pg_token))


async def _params(request: web.Request, generation: str) -> dict[str, str] | web.Response:
    authorization = request.headers.get("Authorization", "")
    content_type = request.content_type
    if generation == "open-api":
        if authorization != f"SECRET_KEY {SECRET_KEY}":
            return _error(401, -401, "invalid secret key")
        if content_type != "application/json":
            return _error(400, -2, "content type must be application/json")
        body = await request.json()
        return {name: str(value) for name, value in body.items()}
    if authorization != f"KakaoAK {ADMIN_KEY}":
        return _error(401, -401, "invalid admin key")
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, -2, "content type must be application/x-www-form-urlencoded")
    return dict(await request.post())  # type: ignore[arg-type]


def _error(status: int, code: int, message: str, **extras: str) -> web.Response:
    return web.json_response({"error_code": code, "error_message": message,
                              "extras": extras or None}, status=status)


def _amount(total: int, tax_free: int) -> dict[str, int]:
    vat = (total - tax_free) // 11
    return {"total": total, "tax_free": tax_free, "vat": vat, "point": 0, "discount": 0,
            "green_deposit": 0}


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090)
    web.run_app(FakeKakaoPay().app(), host="127.0.0.1", port=parser.parse_args().port)


if __name__ == "__main__":
    main()
