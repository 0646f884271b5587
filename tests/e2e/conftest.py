"""Fixtures of the end-to-end tests that several modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.e2e.shop import Shop, last_order_id, open_shop, reconciled
from tests.fakes.kakaopay import FakeKakaoPay


@pytest.fixture
async def kakao_server(aiohttp_server: Callable[..., Awaitable[TestServer]]
                       ) -> tuple[FakeKakaoPay, str]:
    kakao = FakeKakaoPay()
    server = await aiohttp_server(kakao.app())
    return kakao, str(server.make_url("")).rstrip("/")


@pytest.fixture(params=["open-api", "kapi"])
async def shop(request: pytest.FixtureRequest, aiohttp_client: Any, make_app: Any,
               kakao_server: Any) -> AsyncIterator[Shop]:
    before = await last_order_id()
    opened = await open_shop(aiohttp_client, make_app, kakao_server, request.param)
    yield opened
    assert await reconciled(opened.kakao, after=before) == []
