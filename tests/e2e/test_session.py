"""The web app's session: the refresh token only in an HttpOnly cookie that
/api/v1/session alone reads, rotated on each refresh, revoked on sign-out."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import TEST_PASSWORD

Client = TestClient[Any, Any]
COOKIE = "fitnus_session"


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
    client: Client, sign_up: Any,
) -> None:
    account = await sign_up()
    first = await client.post("/api/v1/session",
                              json={"email": account.email, "password": TEST_PASSWORD})
    spent = session_cookie(first).value
    refreshed = await client.post("/api/v1/session/refresh")
    assert refreshed.status == 200, await refreshed.text()
    assert session_cookie(refreshed).value != spent
    live = session_cookie(refreshed).value
    # A stolen, already spent cookie revokes the family: the live one stops working too.
    assert (await refresh_with(client, spent)).status == 401
    assert (await refresh_with(client, live)).status == 401


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
