"""Signing in with Kakao against the local Kakao Login (tests/fakes/kakao_login.py):
accounts are found by Kakao's user id and never by email."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from fitnus.accounts.models import KakaoLink, User
from tests.fakes.kakao_login import CLIENT_ID, CLIENT_SECRET, FakeKakaoLogin, KakaoUser

Client = TestClient[Any, Any]
CALLBACK = "http://fitnus.test/api/v1/auth/kakao/callback"
kakao_ids = iter(range(10**12, 10**13))


@dataclass
class Kakao:
    client: Client
    fake: FakeKakaoLogin


@pytest.fixture
async def kakao(aiohttp_server: Callable[..., Awaitable[TestServer]], aiohttp_client: Any,
                make_app: Any) -> Kakao:
    fake = FakeKakaoLogin()
    url = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
    client = await aiohttp_client(make_app(
        kakao_auth_base_url=url, kakao_api_base_url=url, kakao_client_id=CLIENT_ID,
        kakao_client_secret=CLIENT_SECRET, kakao_redirect_uri=CALLBACK))
    return Kakao(client, fake)


def someone(**details: Any) -> KakaoUser:
    return KakaoUser(id=next(kakao_ids), **details)


async def through_kakao(kakao: Kakao, authorize_url: str) -> str:
    """The browser on Kakao's authorize page; our callback it is sent to."""
    async with ClientSession() as browser:
        page = await browser.get(authorize_url, allow_redirects=False)
        assert page.status == 302, await page.text()
    back = urlsplit(page.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return f"{back.path}?{back.query}"


async def start(kakao: Kakao, **query: str) -> str:
    response = await kakao.client.get("/api/v1/auth/kakao/start", params=query,
                                      allow_redirects=False)
    assert response.status == 302, await response.text()
    return response.headers["Location"]


async def log_in(kakao: Kakao, person: KakaoUser) -> Any:
    kakao.fake.person = person
    return await kakao.client.get(await through_kakao(kakao, await start(kakao)),
                                  allow_redirects=False)


async def me(kakao: Kakao, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await kakao.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_the_first_login_creates_the_account_and_the_next_finds_it(kakao: Kakao) -> None:
    person = someone(nickname="김민지", email="minji@kakao.example.com", email_verified=True)
    first = await log_in(kakao, person)
    assert first.status == 200, await first.text()
    account = await me(kakao, await first.json())
    assert (account["name"], account["email"]) == ("김민지", "minji@kakao.example.com")
    again = await log_in(kakao, person)
    assert (await me(kakao, await again.json()))["id"] == account["id"]
    assert await KakaoLink.filter(kakao_id=str(person.id)).count() == 1
    authorize = urlsplit(await start(kakao))
    sent = parse_qs(authorize.query)
    assert (sent["client_id"], sent["response_type"], sent["scope"]) == (
        [CLIENT_ID], ["code"], ["openid"])
    assert sent["state"]
    assert sent["nonce"]


@pytest.mark.parametrize("verified", [False, True])
async def test_an_email_on_kakao_never_takes_over_an_account(
    kakao: Kakao, sign_up: Any, verified: bool,
) -> None:
    owner = await sign_up()
    intruder = someone(email=owner.email, email_verified=verified)
    response = await log_in(kakao, intruder)
    assert response.status == 200, await response.text()
    account = await me(kakao, await response.json())
    assert account["id"] != owner.id
    assert account["email"] != owner.email
    assert not await KakaoLink.exists(user_id=owner.id)


async def test_an_unverified_email_is_not_the_new_accounts(kakao: Kakao) -> None:
    response = await log_in(kakao, someone(email="claimed@kakao.example.com"))
    assert (await me(kakao, await response.json()))["email"].endswith("@users.kakao.invalid")


@pytest.mark.parametrize("fault", ["forged", "expired", "wrong_nonce", "wrong_audience"])
async def test_an_id_token_that_is_not_kakaos_for_this_login_signs_in_nobody(
    kakao: Kakao, fault: str,
) -> None:
    kakao.fake.id_token_fault = fault
    person = someone()
    response = await log_in(kakao, person)
    assert response.status == 401, await response.text()
    assert (await response.json())["code"] == "kakao_login_failed"
    assert not await KakaoLink.exists(kakao_id=str(person.id))


async def test_a_callback_this_browser_did_not_start_is_400(kakao: Kakao) -> None:
    callback = await through_kakao(kakao, await start(kakao))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    forged = await kakao.client.get("/api/v1/auth/kakao/callback",
                                    params={"code": code, "state": "someone-elses"})
    assert forged.status == 400
    assert (await forged.json())["code"] == "invalid_state"
    # Another browser (no cookie) with the genuine state: refused too.
    async with ClientSession() as other_browser:
        assert (await other_browser.get(kakao.client.make_url(callback))).status == 400
    assert (await kakao.client.get("/api/v1/auth/kakao/callback")).status == 400


async def test_the_web_app_gets_the_tokens_in_a_fragment_and_only_on_this_site(
    kakao: Kakao,
) -> None:
    kakao.fake.person = someone()
    callback = await through_kakao(kakao, await start(kakao, redirect="/app/welcome"))
    response = await kakao.client.get(callback, allow_redirects=False)
    assert response.status == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/app/welcome"
    assert parse_qs(location.fragment)["access_token"]
    for elsewhere in ("https://evil.example.com/", "//evil.example.com/x", "/\\evil.example",
                      "/\t/evil.example", "/\n/evil.example", "/ /evil.example", "app",
                      "javascript:alert(1)"):
        refused = await kakao.client.get("/api/v1/auth/kakao/start",
                                         params={"redirect": elsewhere}, allow_redirects=False)
        assert refused.status == 400


async def test_link_then_sign_in_with_kakao_then_unlink(kakao: Kakao, sign_up: Any) -> None:
    member = await sign_up()
    person = someone()
    kakao.fake.person = person
    linking = await kakao.client.post("/api/v1/me/kakao", headers=member.headers)
    assert linking.status == 200, await linking.text()
    linked = await kakao.client.get(
        await through_kakao(kakao, (await linking.json())["authorize_url"]))
    assert linked.status == 204, await linked.text()
    assert (await me(kakao, await (await log_in(kakao, person)).json()))["id"] == member.id
    assert (await kakao.client.delete("/api/v1/me/kakao", headers=member.headers)).status == 204
    assert (await me(kakao, await (await log_in(kakao, person)).json()))["id"] != member.id


async def test_a_kakao_only_account_cannot_unlink_its_only_way_in(kakao: Kakao) -> None:
    tokens = await (await log_in(kakao, someone())).json()
    response = await kakao.client.delete(
        "/api/v1/me/kakao", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status == 409
    assert (await response.json())["code"] == "password_required"
    login = await kakao.client.post("/api/v1/auth/login", json={
        "email": (await User.get(id=(await me(kakao, tokens))["id"])).email, "password": "!"})
    assert login.status == 401


async def test_without_a_client_id_kakao_login_is_503(client: Client) -> None:
    response = await client.get("/api/v1/auth/kakao/start", allow_redirects=False)
    assert response.status == 503
    assert (await response.json())["code"] == "kakao_login_not_configured"
