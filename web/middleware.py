"""Request id, metrics and access log, database context."""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from fitnus.db import activated
from fitnus.logs import request_id_var
from web.keys import DATABASE

log = logging.getLogger("fitnus.access")

REQUEST_ID_HEADER = "X-Request-ID"
# Label values come from a closed set: clients choose methods, not our cardinality.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _ACCEPTABLE_REQUEST_ID.match(offered) else os.urandom(16).hex()
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

    @functools.cache  # noqa: B019 - one instance per app, bounded by routes x statuses
    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The labelled children, looked up once: ``labels()`` costs more than the increment."""
        labels = (method, route, str(status))
        return self.requests.labels(*labels), self.latency.labels(*labels)

    def middleware(self) -> Any:
        @web.middleware
        async def observe(request: web.Request, handler: Any) -> web.StreamResponse:
            started = time.perf_counter()
            response: web.StreamResponse = await handler(request)
            elapsed = time.perf_counter() - started
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            method = request.method if request.method in KNOWN_METHODS else "other"
            count, latency = self._series(method, route, response.status)
            count.inc()
            latency.observe(elapsed)
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
