"""Request id, metrics and access log, database context."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from fitnus.db import activated
from fitnus.logs import request_id_var
from web.keys import DATABASE

log = logging.getLogger("fitnus.access")

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _ACCEPTABLE_REQUEST_ID.match(offered) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    try:
        response: web.StreamResponse = await handler(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        request_id_var.reset(token)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "fitnus_http_requests_total", "HTTP requests answered",
            ["method", "route", "status"], registry=registry,
        )
        self.latency = Histogram(
            "fitnus_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route", "status"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def middleware(self) -> Any:
        @web.middleware
        async def observe(request: web.Request, handler: Any) -> web.StreamResponse:
            started = time.perf_counter()
            response: web.StreamResponse = await handler(request)
            elapsed = time.perf_counter() - started
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            labels = (request.method, route, str(response.status))
            self.requests.labels(*labels).inc()
            self.latency.labels(*labels).observe(elapsed)
            log.info(
                "request",
                extra={"method": request.method, "route": route, "status": response.status,
                       "duration_ms": round(elapsed * 1000, 2)},
            )
            return response

        return observe


@web.middleware
async def database_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    with activated(request.app[DATABASE]):
        response: web.StreamResponse = await handler(request)
        return response
