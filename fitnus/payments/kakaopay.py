"""Kakao Pay's single-payment API, in either generation: ``open-api`` (the
current one: /online/v1/payment/*, JSON, ``Authorization: SECRET_KEY …``) or
``kapi`` (the older one: /v1/payment/*, form-encoded, ``Authorization:
KakaoAK …``). Answers are returned as Kakao sent them.

Kakao refusing (4xx) raises ``KakaoPayRefused``: never retried. A timeout,
a connection failure or a 5xx raises ``KakaoPayUnavailable``: the call may or
may not have taken effect, so the caller looks the payment up before doing
anything else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

OPEN_API = "open-api"
KAPI = "kapi"
GENERATIONS = (OPEN_API, KAPI)
PATHS = {OPEN_API: "/online/v1/payment", KAPI: "/v1/payment"}


class KakaoPayUnavailable(Exception):
    """No answer, or a 5xx: whether the call took effect is unknown."""


class KakaoPayRefused(Exception):
    """A 4xx: Kakao refused and nothing changed there."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        super().__init__(f"Kakao Pay refused ({status}): {answer}")
        self.status = status
        self.answer = answer


@dataclass(frozen=True, kw_only=True)
class KakaoPayConfig:
    generation: str
    base_url: str
    key: str  # the secret key (open-api) or the admin key (kapi)
    cid: str
    timeout_seconds: float = 10.0


class KakaoPay:
    def __init__(self, config: KakaoPayConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self._session = session

    @property
    def generation(self) -> str:
        return self.config.generation

    async def ready(self, *, partner_order_id: str, partner_user_id: str, item_name: str,
                    quantity: int, total_amount: int, approval_url: str, cancel_url: str,
                    fail_url: str) -> dict[str, Any]:
        return await self._call("ready", {
            "partner_order_id": partner_order_id, "partner_user_id": partner_user_id,
            "item_name": item_name, "quantity": quantity, "total_amount": total_amount,
            "tax_free_amount": 0, "approval_url": approval_url, "cancel_url": cancel_url,
            "fail_url": fail_url})

    async def approve(self, *, tid: str, partner_order_id: str, partner_user_id: str,
                      pg_token: str, total_amount: int) -> dict[str, Any]:
        return await self._call("approve", {
            "tid": tid, "partner_order_id": partner_order_id,
            "partner_user_id": partner_user_id, "pg_token": pg_token,
            "total_amount": total_amount})

    async def order(self, *, tid: str) -> dict[str, Any]:
        return await self._call("order", {"tid": tid})

    async def cancel(self, *, tid: str, cancel_amount: int,
                     cancel_available_amount: int) -> dict[str, Any]:
        return await self._call("cancel", {
            "tid": tid, "cancel_amount": cancel_amount, "cancel_tax_free_amount": 0,
            "cancel_available_amount": cancel_available_amount})

    async def _call(self, step: str, params: dict[str, Any]) -> dict[str, Any]:
        config = self.config
        params = {"cid": config.cid, **params}
        url = f"{config.base_url}{PATHS[config.generation]}/{step}"
        if config.generation == OPEN_API:
            headers = {"Authorization": f"SECRET_KEY {config.key}"}
            body: dict[str, Any] = {"json": params}
        else:
            headers = {"Authorization": f"KakaoAK {config.key}"}
            body = {"data": {name: str(value) for name, value in params.items()}}
        try:
            async with self._session.post(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=config.timeout_seconds),
                **body,
            ) as response:
                answer = await response.json(content_type=None)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise KakaoPayUnavailable(f"{step}: {error!r}") from error
        if status >= 500:
            raise KakaoPayUnavailable(f"{step}: {status} {answer}")
        if status >= 400:
            raise KakaoPayRefused(status, answer if isinstance(answer, dict) else {})
        if not isinstance(answer, dict):
            raise KakaoPayUnavailable(f"{step}: not a JSON object: {answer!r}")
        return answer
