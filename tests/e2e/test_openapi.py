"""/openapi.json tells the truth: every answer an operation gives is one it
declares, in the shape it declares (checked with schemathesis' own checks)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.test_centers import new_center
from web.limits import MAX_LINE_BYTES
from web.openapi import openapi_document
from web.routing import Api, Link

Client = TestClient[Any, Any]


async def served_document(client: Client) -> dict[str, Any]:
    document: dict[str, Any] = await (await client.get("/openapi.json")).json()
    return document


async def call(client: Client, method: str, path: str, **options: Any) -> requests.Response:
    """A real HTTP request from another thread, so schemathesis can judge its response."""
    return await asyncio.to_thread(
        requests.request, method, str(client.make_url(path)), timeout=10, **options
    )


def assert_conforms(
    document: dict[str, Any], method: str, path: str, response: requests.Response,
    checks: list[CheckFunction], **path_parameters: Any,
) -> None:
    operation = schemathesis.openapi.from_dict(document)[path][method]
    operation.Case(path_parameters=path_parameters).validate_response(response, checks=checks)


async def test_a_centers_opening_hours_match_the_declared_answer(
    client: Client, sign_up: Any
) -> None:
    owner = await sign_up("owner")
    center = await new_center(client, owner, opens_at="06:00", closes_at="23:00:00")
    response = await call(client, "GET", f"/api/v1/centers/{center['id']}")
    assert response.json()["opens_at"] == "06:00:00"
    assert_conforms(await served_document(client), "GET", "/api/v1/centers/{center_id}",
                    response, [response_schema_conformance], center_id=center["id"])


async def test_an_overlong_prefer_header_is_a_documented_400(
    client: Client, sign_up: Any
) -> None:
    account, command_id = await sign_up(), uuid.uuid4()
    response = await call(client, "GET", f"/api/v1/commands/{command_id}",
                          headers={**account.headers, "Prefer": "wait=1," + "x" * 200})
    assert response.status_code == 400
    assert_conforms(await served_document(client), "GET", "/api/v1/commands/{command_id}",
                    response, [status_code_conformance, response_schema_conformance],
                    command_id=command_id)


@pytest.mark.parametrize(
    ("path", "options"),
    [("/api/v1/centers", {"params": {"lat": 37.5, "lng": 127.0, "q": "가" * MAX_LINE_BYTES}}),
     ("/api/v1/me", {"headers": {"X-Padding": "x" * (MAX_LINE_BYTES + 1)}})],
)
async def test_a_request_the_http_server_cannot_frame_is_a_documented_400(
    client: Client, path: str, options: dict[str, Any]
) -> None:
    response = await call(client, "GET", path, **options)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert_conforms(await served_document(client), "GET", path, response,
                    [status_code_conformance, content_type_conformance])


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation) for path, item in document["paths"].items()
            for method, operation in item.items()]


@pytest.mark.portable
async def test_every_operation_documents_what_the_routing_layer_answers(client: Client) -> None:
    """Whatever a handler does, the layer around it can answer these."""
    document = await served_document(client)
    for method, path, operation in operations(document):
        label, documented = f"{method} {path}", set(operation["responses"])
        places = {parameter["in"] for parameter in operation["parameters"]}
        if places - {"path"} or "requestBody" in operation:
            assert "400" in documented, label
        if "path" in places:
            # A malformed id names nothing: 404, like an unknown one.
            assert "404" in documented, label
        if "requestBody" in operation:
            assert "413" in documented, label
        if "security" in operation:
            assert "401" in documented, label
        if path.startswith("/api/"):
            assert "503" in documented, label
            problem = operation["responses"]["503"]
            assert "application/problem+json" in problem["content"], label
            assert "Retry-After" in problem["headers"], label
    assert "429" in document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]
    assert "503" not in document["paths"]["/healthz"]["get"]["responses"]


@pytest.mark.portable
async def test_what_starts_a_command_links_to_where_it_is_followed(client: Client) -> None:
    document = await served_document(client)
    signup = document["paths"]["/api/v1/auth/signup"]["post"]["responses"]["201"]
    reserve = document["paths"]["/api/v1/reservations"]["post"]["responses"]["202"]
    assert signup["links"]["get_command"] == {
        "operationId": "get_command",
        "parameters": {"command_id": "$response.body#/welcome_command_id"},
    }
    assert reserve["links"]["get_command"]["parameters"] == {
        "command_id": "$response.body#/command_id"
    }


def test_a_link_to_an_operation_that_does_not_exist_is_refused() -> None:
    api = Api()

    @api.route("GET", "/things", tag="things", summary="Things", responses={200: None},
               links=(Link(status=200, operation_id="no_such_operation", parameters={}),))
    async def things(request: Any) -> Any:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="no_such_operation"):
        openapi_document(api.endpoints, title="t", version="1")
