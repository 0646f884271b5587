"""Endpoints declared once: the same pydantic models validate requests and
describe them in ``/openapi.json``.

A handler receives what its declaration asks for as keyword arguments:
``body`` (the parsed JSON body), ``query``, ``path`` (parsed path parameters)
and ``principal`` (the authenticated caller).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
from aiohttp import web

from fitnus.errors import FieldError, InvalidInput, NotFound
from web.auth import authenticate
from web.limits import MAX_BODY_BYTES

M = TypeVar("M", bound=pydantic.BaseModel)
Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True, kw_only=True)
class Link:
    """Where an answer leads (an OpenAPI link): the operation its ids feed, and
    each parameter's runtime expression, e.g. ``$response.body#/id``. Clients
    read them in /docs; schemathesis' stateful phase follows them."""

    status: int
    operation_id: str
    parameters: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    path_params: type[pydantic.BaseModel] | None = None
    headers: type[pydantic.BaseModel] | None = None
    # A model (JSON), a media type, (a model, another media type for Accept), or no content.
    responses: dict[int, type[pydantic.BaseModel] | str | tuple[type[pydantic.BaseModel], str]
                    | None] = field(default_factory=dict)
    auth: bool = False
    # The statuses its domain errors answer; /openapi.json adds those the
    # layer around every handler answers (web.openapi.problem_statuses).
    errors: tuple[int, ...] = ()
    links: tuple[Link, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass
class Api:
    """A set of endpoints; ``install`` adds them to an aiohttp router."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method=method, path=path, handler=handler, **options))
            return handler

        return register

    def install(self, router: web.UrlDispatcher) -> None:
        for endpoint in self.endpoints:
            router.add_route(endpoint.method, endpoint.path, _bind(endpoint))


def _bind(endpoint: Endpoint) -> Handler:
    if not (endpoint.auth or endpoint.path_params or endpoint.query or endpoint.headers
            or endpoint.body):
        return endpoint.handler  # nothing to parse: no layer of ours in between

    async def handle(request: web.Request) -> web.StreamResponse:
        arguments: dict[str, Any] = {}
        if endpoint.auth:
            arguments["principal"] = authenticate(request)
        if endpoint.path_params is not None:
            arguments["path"] = _parse_path(endpoint.path_params, request)
        if endpoint.query is not None:
            arguments["query"] = _parse_mapping(endpoint.query, dict(request.query), "query")
        if endpoint.headers is not None:
            arguments["headers"] = _parse_mapping(endpoint.headers, request.headers, "header")
        if endpoint.body is not None:
            arguments["body"] = await _parse_body(endpoint.body, request)
        return await endpoint.handler(request, **arguments)

    handle.__name__ = endpoint.operation_id
    return handle


async def _parse_body(model: type[M], request: web.Request) -> M:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY_BYTES, actual_size=request.content_length
        )
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"null")
    except pydantic.ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidInput("the body is not valid JSON", code="malformed_json") from exc
        raise _invalid(exc, "body") from exc


def _parse_mapping(model: type[M], values: Any, where: str) -> M:
    try:
        return model.model_validate(
            {alias: values[alias] for alias in _aliases(model) if alias in values}
        )
    except pydantic.ValidationError as exc:
        raise _invalid(exc, where) from exc


def _parse_path(model: type[M], request: web.Request) -> M:
    try:
        return model.model_validate(dict(request.match_info))
    except pydantic.ValidationError as exc:
        # A malformed id names nothing that exists: the same answer as an unknown id.
        raise NotFound("no such resource", code="not_found") from exc


def _aliases(model: type[pydantic.BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _invalid(exc: pydantic.ValidationError, where: str) -> InvalidInput:
    errors = [
        FieldError(
            field=".".join(str(part) for part in error["loc"]) or where,
            message=error["msg"],
        )
        for error in exc.errors(include_url=False)
    ]
    return InvalidInput(f"the {where} is invalid", code="validation_failed", errors=errors)
