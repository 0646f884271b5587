"""Accounts over real HTTP: signup, login, refresh rotation and reuse, logout, me."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from fitnus.accounts.models import RefreshToken
from fitnus.accounts.service import prune_refresh_tokens
from fitnus.clock import system_clock
from fitnus.config import Settings
from tests.conftest import TEST_PASSWORD, unique_email

Client = TestClient[Any, Any]


@pytest.mark.portable
async def test_signup_returns_the_account_and_korean_names_round_trip(client: Client) -> None:
    email = unique_email()
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": email.upper(), "password": TEST_PASSWORD, "name": "김민지", "role": "owner"},
    )
    assert response.status == 201
    body = await response.json()
    assert body["email"] == email
    assert body["name"] == "김민지"
    assert body["role"] == "owner"
    assert isinstance(body["id"], int)


@pytest.mark.portable
async def test_signup_with_a_taken_email_is_409_whatever_its_case(client: Client) -> None:
    email = unique_email()
    payload = {"email": email, "password": TEST_PASSWORD, "name": "a", "role": "user"}
    assert (await client.post("/api/v1/auth/signup", json=payload)).status == 201
    payload["email"] = email.upper()
    response = await client.post("/api/v1/auth/signup", json=payload)
    assert response.status == 409
    assert (await response.json())["code"] == "email_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [("role", "admin"), ("email", "not-an-email"), ("password", "short"), ("name", ""),
     ("password", 12345678), ("role", None)],
)
async def test_signup_refuses_invalid_fields_with_per_field_errors(
    client: Client, field: str, value: object
) -> None:
    payload: dict[str, object] = {
        "email": unique_email(), "password": TEST_PASSWORD, "name": "n", "role": "user"
    }
    payload[field] = value
    response = await client.post("/api/v1/auth/signup", json=payload)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "validation_failed"
    assert [error["field"] for error in body["errors"]] == [field]


@pytest.mark.portable
async def test_login_then_me_shows_the_account(client: Client, sign_up: Any) -> None:
    account = await sign_up(name="이서준")
    response = await client.get("/api/v1/me", headers=account.headers)
    assert response.status == 200
    assert await response.json() == {
        "id": account.id, "email": account.email, "name": "이서준", "role": "user"
    }


async def test_login_answers_the_same_for_a_wrong_password_and_an_unknown_email(
    client: Client, sign_up: Any
) -> None:
    account = await sign_up()
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "wrong password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": TEST_PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert (await wrong.json())["code"] == (await unknown.json())["code"] == "invalid_credentials"


async def test_login_pair_has_the_contract_fields(client: Client, sign_up: Any) -> None:
    account = await sign_up()
    response = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": TEST_PASSWORD}
    )
    body = await response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60


def forge(settings: Settings, account_id: int, **changes: Any) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(account_id), "role": "admin", "iat": now, "exp": now + timedelta(minutes=5),
        "jti": "x", "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
    }
    key = changes.pop("key", settings.jwt_secret)
    algorithm = changes.pop("algorithm", settings.jwt_algorithm)
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm)


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if payload[5] != "A" else "B"
    return ".".join([header, payload[:5] + flipped + payload[6:], signature])


def unsigned(token: str) -> str:
    import base64
    import json

    _, payload, _ = token.split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return header.decode().rstrip("=") + "." + payload + "."


@pytest.mark.parametrize(
    "attack",
    ["alg_none", "wrong_algorithm", "wrong_key", "tampered", "expired", "wrong_issuer",
     "wrong_audience", "missing_jti", "garbage", "empty", "basic_scheme"],
)
async def test_forged_or_broken_access_tokens_are_401(
    client: Client, sign_up: Any, settings: Settings, attack: str
) -> None:
    account = await sign_up()
    past = datetime.now(UTC) - timedelta(hours=1)
    tokens = {
        "alg_none": unsigned(account.access_token),
        "wrong_algorithm": forge(settings, account.id, algorithm="HS512"),
        "wrong_key": forge(settings, account.id, key="another secret of enough length ......"),
        "tampered": tampered(account.access_token),
        "expired": forge(settings, account.id, iat=past - timedelta(hours=1), exp=past),
        "wrong_issuer": forge(settings, account.id, iss="someone-else"),
        "wrong_audience": forge(settings, account.id, aud="another-api"),
        "missing_jti": forge(settings, account.id, jti=None),
        "garbage": "not.a.token",
        "empty": "",
    }
    if attack == "basic_scheme":
        headers = {"Authorization": f"Basic {account.access_token}"}
    else:
        headers = {"Authorization": f"Bearer {tokens[attack]}"}
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_correctly_signed_token_is_accepted_as_control(
    client: Client, sign_up: Any, settings: Settings
) -> None:
    account = await sign_up()
    response = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {forge(settings, account.id)}"}
    )
    assert response.status == 200


async def test_a_token_accepted_before_is_refused_once_it_expires(
    client: Client, sign_up: Any, settings: Settings
) -> None:
    """Each web process remembers the tokens it verified, but only until their expiry."""
    account = await sign_up()
    now = datetime.now(UTC)
    token = forge(settings, account.id, iat=now - timedelta(seconds=10),
                  exp=now + timedelta(seconds=2))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    expired_at = now + timedelta(seconds=2.1)
    await asyncio.sleep(max(0.0, (expired_at - datetime.now(UTC)).total_seconds()))
    assert (await client.get("/api/v1/me", headers=headers)).status == 401


async def test_a_rotated_secret_keeps_tokens_it_signed_good_for_their_lifetime(
    aiohttp_client: Any, make_app: Any, client: Client, sign_up: Any, settings: Settings,
) -> None:
    """JWT_SECRET replaced, the old one given as JWT_PREVIOUS_SECRET: a token
    the old one signed still works; without it (the rotation over), it does not."""
    account = await sign_up()
    old = {"Authorization": f"Bearer {account.access_token}"}
    new_secret = "a new secret of at least thirty-two characters ....."
    rotating = await aiohttp_client(make_app(jwt_secret=new_secret,
                                             jwt_previous_secret=settings.jwt_secret))
    assert (await rotating.get("/api/v1/me", headers=old)).status == 200
    login = await rotating.post("/api/v1/auth/login",
                                json={"email": account.email, "password": account.password})
    fresh = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    assert (await rotating.get("/api/v1/me", headers=fresh)).status == 200
    assert (await client.get("/api/v1/me", headers=fresh)).status == 401  # signed with the new
    rotated = await aiohttp_client(make_app(jwt_secret=new_secret))
    assert (await rotated.get("/api/v1/me", headers=old)).status == 401
    assert (await rotated.get("/api/v1/me", headers=fresh)).status == 200
    forged = forge(settings, account.id, key="neither secret, but long enough ............")
    assert (await rotating.get("/api/v1/me", headers={
        "Authorization": f"Bearer {forged}"})).status == 401


async def refresh(client: Client, token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


@pytest.mark.portable
async def test_refresh_rotates_and_the_new_pair_works(client: Client, sign_up: Any) -> None:
    account = await sign_up()
    response = await refresh(client, account.refresh_token)
    assert response.status == 200
    pair = await response.json()
    assert pair["refresh_token"] != account.refresh_token
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status == 200
    assert (await refresh(client, pair["refresh_token"])).status == 200


@pytest.mark.portable
async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(
    client: Client, sign_up: Any
) -> None:
    account = await sign_up()
    rotated = await (await refresh(client, account.refresh_token)).json()
    reuse = await refresh(client, account.refresh_token)
    assert reuse.status == 401
    assert (await reuse.json())["code"] == "invalid_refresh_token"
    # The thief's or the owner's newer token is dead too: the family is revoked.
    assert (await refresh(client, rotated["refresh_token"])).status == 401


async def test_reuse_revokes_only_that_family(client: Client, sign_up: Any) -> None:
    account = await sign_up()
    second_login = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": TEST_PASSWORD}
    )
    other_device = (await second_login.json())["refresh_token"]
    await refresh(client, account.refresh_token)
    await refresh(client, account.refresh_token)
    assert (await refresh(client, other_device)).status == 200


async def test_concurrent_refreshes_of_one_token_succeed_exactly_once(
    client: Client, sign_up: Any
) -> None:
    account = await sign_up()
    responses = await asyncio.gather(*(refresh(client, account.refresh_token) for _ in range(20)))
    statuses = sorted(response.status for response in responses)
    assert statuses.count(200) == 1
    assert statuses.count(401) == 19
    rows = await RefreshToken.filter(user_id=account.id).count()
    assert rows == 2  # the login's token and exactly one rotation


@pytest.mark.parametrize("token", ["unknown-token", "x" * 256])
async def test_unknown_refresh_tokens_are_401(client: Client, token: str) -> None:
    assert (await refresh(client, token)).status == 401


@pytest.mark.portable
async def test_logout_ends_the_refresh_family(client: Client, sign_up: Any) -> None:
    account = await sign_up()
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token},
        headers=account.headers,
    )
    assert response.status == 204
    assert (await refresh(client, account.refresh_token)).status == 401


async def test_logout_cannot_revoke_another_users_token(client: Client, sign_up: Any) -> None:
    victim, attacker = await sign_up(), await sign_up()
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": victim.refresh_token},
        headers=attacker.headers,
    )
    assert response.status == 204
    assert (await refresh(client, victim.refresh_token)).status == 200


async def test_logout_needs_an_access_token(client: Client, sign_up: Any) -> None:
    account = await sign_up()
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
    )
    assert response.status == 401


@pytest.mark.portable
async def test_expired_refresh_tokens_are_pruned_and_live_ones_kept(
    client: Client, sign_up: Any,
) -> None:
    expired, live = await sign_up(), await sign_up()
    now = system_clock.now()
    await RefreshToken.filter(user_id=expired.id).update(expires_at=now - timedelta(seconds=1))
    assert await prune_refresh_tokens(now=now) >= 1
    assert not await RefreshToken.filter(user_id=expired.id).exists()
    assert await RefreshToken.filter(user_id=live.id).exists()
    refreshed = await client.post("/api/v1/auth/refresh",
                                  json={"refresh_token": live.refresh_token})
    assert refreshed.status == 200
