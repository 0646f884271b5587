"""OpenAPI 3.1, generated from the endpoint declarations that validate requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.routing import Endpoint
from web.schemas import Problem

REF_TEMPLATE = "#/components/schemas/{model}"


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    models = _models(endpoints)
    refs, components = models_json_schema(
        [(model, mode) for model, mode in models], ref_template=REF_TEMPLATE
    )
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
    for status in (*endpoint.errors, 500):
        operation["responses"][str(status)] = _problem_response(refs)
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(endpoint.body, "validation")]}},
        }
    if endpoint.auth:
        operation["security"] = [{"bearerAuth": []}]
    return operation


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


def _response(response: type[BaseModel] | str | None, refs: dict[Any, Any]) -> dict[str, Any]:
    if response is None:
        return {"description": "No content"}
    if isinstance(response, str):
        media = response if "/" in response else "text/plain"
        return {"description": response, "content": {media: {"schema": {"type": "string"}}}}
    return {
        "description": response.__doc__ or response.__name__,
        "content": {"application/json": {"schema": refs[(response, "serialization")]}},
    }


def _problem_response(refs: dict[Any, Any]) -> dict[str, Any]:
    return {
        "description": "A problem (RFC 9457)",
        "content": {"application/problem+json": {"schema": refs[(Problem, "serialization")]}},
    }
