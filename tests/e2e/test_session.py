"""The web app's session: the refresh token only in an HttpOnly cookie that
/api/v1/session alone reads, rotated on each refresh, revoked on sign-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fitnus.clock import ManualClock, system_clock
from tests.conftest import TEST_PASSWORD, unique_email
from web.session import REUSE_GRACE_SECONDS

Client = TestClient[Any, Any]
COOKIE = "fitnus_session"


async def sign_up_through(client: Client) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/signup", json={
        "email": unique_email(), "password": TEST_PASSWORD, "name": "세션 사용자"})
    assert response.status == 201, await response.text()
    return dict(await response.json())


def session_cookie(response: Any) -> Any:
    return response.cookies[COOKIE]


async def refresh_with(client: Client, value: str) -> Any:
    """A refresh presenting ``value``, as a browser holding that cookie would."""
    client.session.cookie_jar.clear()
    return await client.post("/api/v1/session/refresh", headers={"Cookie": f"{COOKIE}={value}"})


@pytest.mark.portable
async def test_signing_in_sets_an_httponly_cookie_and_answers_no_refresh_token(
    client: Client, sign_up: Any,
) -> None:
    account = await sign_up()
    response = await client.post("/api/v1/session",
                                 json={"email": account.email, "password": TEST_PASSWORD})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["user"]["email"] == account.email
    assert response.headers["Cache-Control"] == "no-store"
    cookie = session_cookie(response)
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/api/v1/session"
    assert not cookie["secure"]  # plain http here; https when PUBLIC_BASE_URL says so
    me = await client.get("/api/v1/me",
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (await me.json())["id"] == account.id


@pytest.mark.portable
async def test_refresh_rotates_the_cookie_and_a_spent_one_ends_the_session(
    aiohttp_client: Any, make_app: Any,
) -> None:
    clock = ManualClock(system_clock.now())
    client = await aiohttp_client(make_app(clock=clock))
    account = await sign_up_through(client)
    first = await client.post("/api/v1/session",
                              json={"email": account["email"], "password": TEST_PASSWORD})
    spent = session_cookie(first).value
    refreshed = await client.post("/api/v1/session/refresh")
    assert refreshed.status == 200, await refreshed.text()
    successor = session_cookie(refreshed).value
    assert successor != spent
    # A page that navigated away mid-refresh presents the spent cookie again at
    # once: it gets a new one, and the successor it never received is revoked.
    again = await refresh_with(client, spent)
    assert again.status == 200, await again.text()
    live = session_cookie(again).value
    assert live not in (spent, successor)
    assert (await refresh_with(client, successor)).status == 401
    # Later, a spent cookie is theft: the whole session ends, the live one too.
    clock.advance(timedelta(seconds=REUSE_GRACE_SECONDS))
    assert (await refresh_with(client, spent)).status == 401
    assert (await refresh_with(client, live)).status == 401


@pytest.mark.portable
@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}])
async def test_another_sites_page_cannot_open_or_spend_a_session(
    client: Client, sign_up: Any, headers: dict[str, str],
) -> None:
    """Login CSRF: a form on another site posting credentials of its choosing."""
    account = await sign_up()
    opened = await client.post("/api/v1/session", headers=headers,
                               json={"email": account.email, "password": TEST_PASSWORD})
    assert opened.status == 403
    assert (await opened.json())["code"] == "cross_site_request"
    assert COOKIE not in opened.cookies
    ours = await client.post("/api/v1/session", headers={"Sec-Fetch-Site": "same-origin"},
                             json={"email": account.email, "password": TEST_PASSWORD})
    assert ours.status == 200
    assert (await client.post("/api/v1/session/refresh", headers=headers)).status == 403
    assert (await client.post("/api/v1/session/refresh",
                              headers={"Origin": str(client.make_url("")).rstrip("/")})
            ).status == 200


@pytest.mark.portable
async def test_without_a_cookie_refresh_is_401(client: Client) -> None:
    client.session.cookie_jar.clear()
    response = await client.post("/api/v1/session/refresh")
    assert response.status == 401
    assert (await response.json())["code"] == "not_authenticated"


@pytest.mark.portable
async def test_signing_out_revokes_the_session_and_removes_the_cookie(
    client: Client, sign_up: Any,
) -> None:
    account = await sign_up()
    opened = await client.post("/api/v1/session",
                               json={"email": account.email, "password": TEST_PASSWORD})
    token = (await opened.json())["access_token"]
    kept = session_cookie(opened).value
    assert (await client.delete("/api/v1/session")).status == 401  # needs the access token
    closed = await client.delete("/api/v1/session",
                                 headers={"Authorization": f"Bearer {token}"})
    assert closed.status == 204
    assert session_cookie(closed).value == ""
    assert (await refresh_with(client, kept)).status == 401


@pytest.mark.portable
async def test_a_refresh_token_from_kakaos_redirect_is_spent_into_the_cookie(
    client: Client, sign_up: Any,
) -> None:
    account = await sign_up()
    adopted = await client.put("/api/v1/session",
                               json={"refresh_token": account.refresh_token})
    assert adopted.status == 200, await adopted.text()
    assert session_cookie(adopted).value != account.refresh_token
    again = await client.post("/api/v1/auth/refresh",
                              json={"refresh_token": account.refresh_token})
    assert again.status == 401  # the fragment's token is spent


@pytest.mark.portable
async def test_wrong_credentials_set_no_cookie(client: Client, sign_up: Any) -> None:
    account = await sign_up()
    response = await client.post("/api/v1/session",
                                 json={"email": account.email, "password": "wrong password"})
    assert response.status == 401
    assert COOKIE not in response.cookies
