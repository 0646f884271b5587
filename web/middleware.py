"""Everything around a request, in one middleware: its id, its database
context, problem+json for what it raised, its metrics and its access-log line.

One layer rather than four: aiohttp runs each middleware as a coroutine of its
own (and a fifth, its own, once there are any), and together they cost as much
as aiohttp itself."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute
from multidict import istr
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from fitnus.db import activate, deactivate
from fitnus.logs import request_id_var
from web.errors import answer_for_error
from web.keys import DATABASE

log = logging.getLogger("fitnus.access")

REQUEST_ID_HEADER = istr("X-Request-ID")
# Label values come from a closed set: clients choose methods, not our cardinality.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestIds:
    """32 hex digits, unique across processes (a random half per process) and
    within one (a counter): no system call per request, as random ids need."""

    def __init__(self) -> None:
        self._process = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._process}{next(self._counter):016x}"


class _Series:
    __slots__ = ("count", "in_bucket", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        # Per bucket, not yet cumulative; the last one is +Inf.
        self.in_bucket = [0] * (len(LATENCY_BUCKETS) + 1)


class HttpMetrics(Collector):
    """Requests and their latency by method, route and status.

    Kept in plain numbers and turned into Prometheus families at scrape time:
    prometheus_client's labelled children take a lock for every increment,
    which this process (one thread, one event loop) does not need. The names
    and shapes are those of a Counter and a Histogram."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Labels by the router's resource (None for every miss), method and
        # status, resolved once; the series by their labels (a bounded set).
        self._labels: dict[tuple[AbstractResource | None, str, int], tuple[str, str, str]] = {}
        self._series: dict[tuple[str, str, str], _Series] = {}
        registry.register(self)

    def observe(self, route: AbstractRoute, method: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = "other"
        key = (route.resource, method, status)
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = (method, route_label(route), str(status))
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = _Series()
        series.count += 1
        series.seconds += seconds
        series.in_bucket[bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        names = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "fitnus_http_requests", "HTTP requests answered", labels=names)
        latency = HistogramMetricFamily(
            "fitnus_http_request_duration_seconds", "Time to answer an HTTP request",
            labels=names)
        bounds = [*(str(float(bound)) for bound in LATENCY_BUCKETS), "+Inf"]
        for labels, series in list(self._series.items()):
            values = list(labels)
            requests.add_metric(values, series.count)
            cumulative = list(itertools.accumulate(series.in_bucket))
            latency.add_metric(values, list(zip(bounds, cumulative, strict=True)), series.seconds)
        yield requests
        yield latency


def route_label(route: AbstractRoute) -> str:
    """The route's path template; every miss (404, 405) is one label."""
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


def around_each_request(metrics: HttpMetrics) -> Any:
    request_ids = RequestIds()

    @web.middleware
    async def around(request: web.Request, handler: Any) -> web.StreamResponse:
        offered = request.headers.get(REQUEST_ID_HEADER)
        if offered is not None and _ACCEPTABLE_REQUEST_ID.match(offered):
            request_id = offered
        else:
            request_id = request_ids.next()
        request_token = request_id_var.set(request_id)
        database_token = activate(request.app[DATABASE])
        started = time.perf_counter()
        try:
            try:
                response: web.StreamResponse = await handler(request)
            except Exception as error:
                response = answer_for_error(request, error)
            response.headers[REQUEST_ID_HEADER] = request_id
            elapsed = time.perf_counter() - started
            route = request.match_info.route
            metrics.observe(route, request.method, response.status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"method": request.method, "route": route_label(route),
                                           "status": response.status,
                                           "duration_ms": round(elapsed * 1000, 2)})
            return response
        finally:
            deactivate(database_token)
            request_id_var.reset(request_token)

    return around
