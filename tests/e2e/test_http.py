"""HTTP behaviour every endpoint shares: problem+json errors, limits, request ids,
operations endpoints."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fitnus.logs import configure_logging
from web.limits import MAX_BODY_BYTES

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"


async def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith(PROBLEM)
    body: dict[str, Any] = await response.json(content_type=None)
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


@pytest.mark.portable
async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    await problem_of(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    response = await client.delete("/api/v1/auth/login")
    await problem_of(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b"\xff\xfe\x00", b'{"email": "a@b.c", }', b"[1, 2"]
)
async def test_malformed_json_is_a_400_problem(client: Client, raw: bytes) -> None:
    response = await client.post(
        "/api/v1/auth/login", data=raw, headers={"Content-Type": "application/json"}
    )
    await problem_of(response, 400, "malformed_json")


@pytest.mark.parametrize(
    "payload", [[], "text", 42, None, {"email": 1, "password": "x"}, {"email": ["a"]}, {}]
)
async def test_wrong_shapes_and_types_are_400_with_errors(client: Client, payload: Any) -> None:
    response = await client.post("/api/v1/auth/login", data=json.dumps(payload))
    body = await problem_of(response, 400, "validation_failed")
    assert body["errors"]
    assert all({"field", "message"} == set(error) for error in body["errors"])


async def test_empty_body_is_a_400(client: Client) -> None:
    await problem_of(await client.post("/api/v1/auth/login"), 400, "validation_failed")


async def test_a_body_over_one_mebibyte_is_413(client: Client) -> None:
    big = json.dumps({"email": "a@b.c", "password": "x" * MAX_BODY_BYTES}).encode()
    response = await client.post("/api/v1/auth/login", data=io.BytesIO(big))
    await problem_of(response, 413, "body_too_large")


async def test_a_chunked_body_over_the_limit_is_413(client: Client) -> None:
    async def chunks() -> Any:
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = await client.post("/api/v1/auth/login", data=chunks())
    await problem_of(response, 413, "body_too_large")


@pytest.mark.portable
async def test_request_id_is_echoed_when_sane_and_generated_otherwise(client: Client) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["X-Request-ID"] not in ("", "bad id\twith spaces")
    missing = await client.get("/nope")
    assert len(missing.headers["X-Request-ID"]) == 32
    again = await client.get("/nope")
    assert again.headers["X-Request-ID"] != missing.headers["X-Request-ID"]
    assert re.fullmatch("[0-9a-f]{32}", again.headers["X-Request-ID"])


async def test_every_log_line_is_json_with_the_request_id(
    client: Client, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    try:
        await client.get("/healthz", headers={"X-Request-ID": "trace-me-42"})
    finally:
        configure_logging("WARNING")
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    access = [record for record in records if record.get("logger") == "fitnus.access"]
    assert access
    assert access[-1]["request_id"] == "trace-me-42"
    assert access[-1]["route"] == "/healthz"


@pytest.mark.portable
async def test_healthz_and_readyz(client: Client) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    assert (await (await client.get("/readyz")).json()) == {"status": "ready"}


async def test_readyz_is_503_when_redis_is_down(aiohttp_client: Any, make_app: Any) -> None:
    from web.keys import REDIS

    client = await aiohttp_client(make_app())
    app_redis = client.app[REDIS]
    await app_redis.connection_pool.disconnect()
    app_redis.connection_pool.connection_kwargs.update(host="127.0.0.1", port=1)
    await problem_of(await client.get("/readyz"), 503, "not_ready")


async def test_metrics_count_requests_by_route_and_status(client: Client) -> None:
    await client.get("/healthz")
    await client.get("/api/v1/unknown")
    text = await (await client.get("/metrics")).text()
    assert 'fitnus_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "fitnus_http_request_duration_seconds_bucket" in text


def samples(text: str, name: str) -> dict[str, float]:
    """The samples of one metric in the text format, by their label string."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name):].rpartition(" ")
            found[labels] = float(value)
    return found


async def test_metric_series_stay_few_whatever_clients_send(client: Client) -> None:
    """Every miss is one route label and every method we do not serve one
    method label, however many paths and methods the clients send."""
    for number in range(30):
        await client.get(f"/api/v1/made-up-{number}")
    for method in ("PROPFIND", "MKCOL", "LOCK", "REPORT", "PURGE", "SEARCH"):
        await client.request(method, "/healthz")
    text = await (await client.get("/metrics")).text()
    counts = samples(text, "fitnus_http_requests_total")
    assert counts['{method="GET",route="unmatched",status="404"}'] == 30
    assert counts['{method="other",route="unmatched",status="405"}'] == 6
    assert not any("made-up" in labels or "PROPFIND" in labels for labels in counts)


async def test_latency_histogram_is_cumulative_and_counts_every_request(client: Client) -> None:
    for _ in range(7):
        await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    series = '{method="GET",route="/healthz",status="200"}'
    assert samples(text, "fitnus_http_requests_total")[series] == 7
    assert samples(text, "fitnus_http_request_duration_seconds_count")[series] == 7
    in_buckets = samples(text, "fitnus_http_request_duration_seconds_bucket")
    buckets = [value for labels, value in in_buckets.items()
               if 'route="/healthz"' in labels and 'status="200"' in labels]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 7
    assert 0 < samples(text, "fitnus_http_request_duration_seconds_sum")[series] < 7 * 5


async def test_openapi_is_3_1_and_describes_every_route(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    described = {(path, method.upper()) for path, item in document["paths"].items()
                 for method in item}
    documented_prefixes = ("/api", "/healthz", "/readyz", "/metrics")
    served = {
        (route.resource.canonical, route.method)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(documented_prefixes)
        and route.method != "HEAD"
    }
    assert served == described
    signup = document["paths"]["/api/v1/auth/signup"]["post"]
    schema_ref = signup["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["properties"]["role"]["enum"] == ["user", "owner"]


async def test_docs_are_served_locally_without_a_cdn(client: Client) -> None:
    html = await (await client.get("/docs/")).text()
    [document_url] = re.findall(r'url: "([^"]+)"', html)
    served = await (await client.get(document_url)).json()
    assert served == await (await client.get("/openapi.json")).json()
    assert "https://" not in html
    assert "http://" not in html
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).status == 200


async def test_invented_methods_do_not_grow_the_metric_labels(client: Client) -> None:
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        assert (await client.request(method, "/healthz")).status == 405
    text = await (await client.get("/metrics")).text()
    assert 'method="other",route="unmatched",status="405"} 3.0' in text
    assert "PROPFIND" not in text
