"""OpenAPI 3.1, generated from the endpoint declarations that validate requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.limits import MAX_BODY_BYTES, MAX_LINE_BYTES
from web.routing import Endpoint
from web.schemas import Problem

REF_TEMPLATE = "#/components/schemas/{model}"
# Every operation under /api reads the database or Redis, and either can be down.
SERVICE_PREFIX = "/api/"
# What each status means across the API (the HTTP contract's "Errors").
PROBLEM_MEANINGS = {
    400: "Invalid input: the body, query or a header (`errors` says which field)",
    401: "Not authenticated: no valid Bearer access token",
    403: "Authenticated, but not allowed",
    404: "Unknown, or not yours to see",
    409: "The state does not allow it (`code` says why)",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    429: "Too many requests: retry after Retry-After seconds",
    500: "A bug (every 5xx but 503 is one)",
    503: "A dependency is down and nothing was half-done: retry after Retry-After seconds",
}
# Whatever the operation, the HTTP server itself refuses a request it cannot
# frame, in text/plain, before the API sees it.
FRAMING_REFUSAL = (f"refused by the HTTP server before the API read it (text/plain): a "
                   f"request line or header over {MAX_LINE_BYTES} bytes, or malformed")
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again",
                    "schema": {"type": "integer", "minimum": 0}},
}


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    models = _models(endpoints)
    refs, components = models_json_schema(
        [(model, mode) for model, mode in models], ref_template=REF_TEMPLATE
    )
    _check_links(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"}},
        },
    }


def _models(endpoints: list[Endpoint]) -> list[tuple[type[BaseModel], Any]]:
    seen: dict[tuple[type[BaseModel], str], None] = {(Problem, "serialization"): None}
    for endpoint in endpoints:
        if endpoint.body is not None:
            seen[(endpoint.body, "validation")] = None
        for response in endpoint.responses.values():
            if isinstance(response, tuple):
                response = response[0]
            if isinstance(response, type) and issubclass(response, BaseModel):
                seen[(response, "serialization")] = None
    return list(seen)


def _operation(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": {
            str(status): _response(response, refs)
            for status, response in endpoint.responses.items()
        },
    }
    for status in sorted(problem_statuses(endpoint)):
        operation["responses"][str(status)] = _problem_response(status, refs)
    _add_framing_refusal(operation["responses"])
    for link in endpoint.links:
        operation["responses"][str(link.status)].setdefault("links", {})[link.operation_id] = {
            "operationId": link.operation_id, "parameters": link.parameters,
        }
    operation["responses"] = dict(sorted(operation["responses"].items()))
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(endpoint.body, "validation")]}},
        }
    if endpoint.auth:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _check_links(endpoints: list[Endpoint]) -> None:
    operations = {endpoint.operation_id for endpoint in endpoints}
    for endpoint in endpoints:
        for link in endpoint.links:
            if link.operation_id not in operations or link.status not in endpoint.responses:
                raise ValueError(f"{endpoint.operation_id} links to {link} but cannot")


def problem_statuses(endpoint: Endpoint) -> set[int]:
    """The statuses the endpoint declares for its domain errors, and those the
    layer around every handler answers whatever the handler does."""
    statuses = {*endpoint.errors, 500}
    if endpoint.body is not None or endpoint.query is not None or endpoint.headers is not None:
        statuses.add(400)
    if endpoint.body is not None:
        statuses.add(413)
    if endpoint.path_params is not None:
        statuses.add(404)
    if endpoint.auth:
        statuses.add(401)
    if endpoint.path.startswith(SERVICE_PREFIX):
        statuses.add(503)
    return statuses


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters = []
    for where, model in (("path", endpoint.path_params), ("query", endpoint.query),
                         ("header", endpoint.headers)):
        if model is None:
            continue
        schema = model.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE)
        required = set(schema.get("required", []))
        for name, property_schema in schema.get("properties", {}).items():
            description = property_schema.pop("description", None)
            parameter = {"name": name, "in": where, "required": where == "path" or name in required,
                         "schema": property_schema}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    return parameters


# One event of a text/event-stream, as the HTML standard parses it (OpenAPI
# 3.1 has no itemSchema: tools read the media type's schema as the event's).
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


def _response(response: type[BaseModel] | str | tuple[type[BaseModel], str] | None,
              refs: dict[Any, Any]) -> dict[str, Any]:
    if response is None:
        return {"description": "No content"}
    if isinstance(response, tuple):
        # JSON, or another representation (``Accept``) of the same content.
        model, media = response
        described = _response(model, refs)
        described["content"][media] = {"schema": {"type": "string"}}
        return described
    if isinstance(response, str):
        media = response if "/" in response else "text/plain"
        schema = SSE_EVENT if media == "text/event-stream" else {"type": "string"}
        return {"description": response, "content": {media: {"schema": schema}}}
    return {
        "description": response.__doc__ or response.__name__,
        "content": {"application/json": {"schema": refs[(response, "serialization")]}},
    }


def _add_framing_refusal(responses: dict[str, Any]) -> None:
    refused = responses.get("400")
    if refused is None:
        description = FRAMING_REFUSAL[:1].upper() + FRAMING_REFUSAL[1:]
        responses["400"] = {"description": description, "content": {}}
    else:
        refused["description"] += f"; or {FRAMING_REFUSAL}"
    responses["400"]["content"]["text/plain"] = {"schema": {"type": "string"}}


def _problem_response(status: int, refs: dict[Any, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": PROBLEM_MEANINGS.get(status, "A problem (RFC 9457)"),
        "content": {"application/problem+json": {"schema": refs[(Problem, "serialization")]}},
    }
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response
