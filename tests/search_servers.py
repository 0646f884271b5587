"""Test-only plumbing for the Elasticsearch backend against osmem-server.

The official client sends `application/vnd.elasticsearch+json;
compatible-with=N` media types, which osmem refuses; this transport node
rewrites them to plain `application/json`. Production uses the client as is.
"""

from __future__ import annotations

import functools
from typing import Any

from elastic_transport import AiohttpHttpNode

from fitnus.search.backends import open_center_index


class PlainJsonNode(AiohttpHttpNode):
    async def perform_request(  # type: ignore[override]
        self, method: str, target: str, body: bytes | None = None,
        headers: Any = None, **options: Any,
    ) -> Any:
        if headers:
            headers = {
                name: ("application/json" if "compatible-with" in str(value) else value)
                for name, value in headers.items()
            }
        return await super().perform_request(method, target, body=body, headers=headers, **options)


open_test_center_index = functools.partial(
    open_center_index, elasticsearch_node_class=PlainJsonNode
)
