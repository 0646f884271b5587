from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from fitnus.db import ping
from fitnus.errors import Unavailable
from web.keys import DATABASE, METRICS, REDIS
from web.routing import Api
from web.schemas import json

log = logging.getLogger(__name__)
api = Api()

READINESS_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str


@api.route("GET", "/healthz", tag="operations", summary="The process is up",
           responses={200: Health})
async def healthz(request: web.Request) -> web.Response:
    return json(Health(status="ok"))


@api.route("GET", "/readyz", tag="operations", summary="The database and Redis answer",
           responses={200: Health}, errors=(503,))
async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await ping(request.app[DATABASE])
            await request.app[REDIS].ping()
    except Exception as exc:
        # Readiness reports any failure of a dependency, whatever its type.
        log.warning("not ready: %r", exc)
        raise Unavailable("a dependency does not answer", code="not_ready") from exc
    return json(Health(status="ready"))


@api.route("GET", "/metrics", tag="operations", summary="Prometheus metrics",
           responses={200: "Prometheus text exposition"})
async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(request.app[METRICS]), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
