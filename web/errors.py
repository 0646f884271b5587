"""The one place where errors become RFC 9457 problem+json answers."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from dramatiq.errors import BrokerConnectionError
from redis.exceptions import ClusterError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fitnus.errors import (
    BadGateway,
    Conflict,
    FitnusError,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
    Unavailable,
)

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://fitnus.example/problems/"

STATUS_FOR_ERROR: dict[type[FitnusError], int] = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    BadGateway: 502,
    Unavailable: 503,
}

# aiohttp's own refusals (router, body size) keep their status, with our codes.
CODE_FOR_HTTP_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def problem(
    status: int,
    *,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_for_domain_error(error: FitnusError) -> web.Response:
    status = next(
        (status for kind, status in STATUS_FOR_ERROR.items() if isinstance(error, kind)), 500
    )
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(error, NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="fitnus"'
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, InvalidInput):
        extra["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    if status == 500:
        log.error("domain error without an HTTP status: %r", error)
        return problem(500, code="internal_error", detail="internal error")
    return problem(status, code=error.code, detail=error.detail, headers=headers, **extra)


def problem_for_http_error(error: web.HTTPException) -> web.Response:
    code = CODE_FOR_HTTP_STATUS.get(error.status, "http_error")
    headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
    extra: dict[str, Any] = {"errors": []} if error.status == 400 else {}
    return problem(error.status, code=code, detail=error.reason, headers=headers, **extra)


def answer_for_error(request: web.Request, error: Exception) -> web.Response:
    """The problem+json answer for what a handler raised; a redirect raises on."""
    if isinstance(error, FitnusError):
        return problem_for_domain_error(error)
    if isinstance(error, RedisConnectionError | RedisTimeoutError | ClusterError
                  | SlotNotCoveredError | TryAgainError | BrokerConnectionError):
        # Whatever fails closed on Redis (seats, cancellations, tickets)
        # stops before anything is half-done; the client retries. A cluster
        # with a master down, or slots moving, answers the same way, and so
        # does a broker that cannot take a message.
        log.warning("a dependency is down on %s %s", request.method, request.path,
                    exc_info=error)
        return problem_for_domain_error(Unavailable("a service we depend on is down"))
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        return problem_for_http_error(error)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return problem(500, code="internal_error", detail="internal error")
