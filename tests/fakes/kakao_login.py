"""A local Kakao Login (OpenID Connect) as documented: the authorize page
(``/oauth/authorize``), the token endpoint (``/oauth/token``, form-encoded,
with an RS256-signed ``id_token``), the JWKS (``/.well-known/jwks.json``)
and the user API (``/v2/user/me``). The person who logs in, and what goes
wrong with their id_token, are set by the test."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://kauth.kakao.com"
CLIENT_ID = "fitnus-test-app-key"
CLIENT_SECRET = "fitnus-test-client-secret"
KEY_ID = "fitnus-test-key"


@dataclass
class KakaoUser:
    id: int
    nickname: str = "카카오 사용자"
    email: str | None = None
    email_verified: bool = False


@dataclass
class Grant:
    user: KakaoUser
    redirect_uri: str
    nonce: str | None
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))


@dataclass
class FakeKakaoLogin:
    """``person`` logs in next; ``id_token_fault`` spoils their id_token:
    "forged" (another key), "expired", "wrong_nonce", "wrong_audience"."""

    person: KakaoUser = field(default_factory=lambda: KakaoUser(id=1))
    id_token_fault: str | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, KakaoUser] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oauth/authorize", self._authorize)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_get("/v2/user/me", self._me)
        return app

    async def _authorize(self, request: web.Request) -> web.Response:
        """The person consents at once; the browser goes back with a code."""
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return web.json_response({"error": "invalid_request"}, status=400)
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(self.person, query["redirect_uri"], query.get("nonce"))
        params = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        raise web.HTTPFound(f"{query['redirect_uri']}?{urlencode(params)}")

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _error("invalid_request", "form-encoded body expected")
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _error("invalid_client", "Bad client credentials", status=401)
        grant = self.grants.pop(str(form.get("code")), None)
        if (form.get("grant_type") != "authorization_code" or grant is None
                or form.get("redirect_uri") != grant.redirect_uri):
            return _error("invalid_grant", "authorization code not found")
        self.tokens[grant.access_token] = grant.user
        return web.json_response({
            "token_type": "bearer", "access_token": grant.access_token, "expires_in": 21599,
            "refresh_token": secrets.token_urlsafe(16), "refresh_token_expires_in": 5183999,
            "scope": "openid profile_nickname account_email",
            "id_token": self._id_token(grant)})

    def _id_token(self, grant: Grant) -> str:
        now = int(time.time())
        fault = self.id_token_fault
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": "someone-else" if fault == "wrong_audience" else CLIENT_ID,
            "sub": str(grant.user.id), "iat": now - 5,
            "exp": now - 60 if fault == "expired" else now + 3600, "auth_time": now - 5,
            "nickname": grant.user.nickname}
        if grant.nonce is not None:
            claims["nonce"] = "not-yours" if fault == "wrong_nonce" else grant.nonce
        if grant.user.email is not None:
            claims["email"] = grant.user.email
        key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
               if fault == "forged" else self.key)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})

    async def _jwks(self, request: web.Request) -> web.Response:
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": KEY_ID, "alg": "RS256",
                                            "use": "sig"}]})

    async def _me(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        if user is None:
            return web.json_response({"msg": "this access token does not exist", "code": -401},
                                     status=401)
        account: dict[str, Any] = {"profile": {"nickname": user.nickname}}
        if user.email is not None:
            account |= {"has_email": True, "email": user.email, "is_email_valid": True,
                        "is_email_verified": user.email_verified}
        return web.json_response({"id": user.id, "kakao_account": account})


def _error(error: str, description: str, *, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description,
                              "error_code": "KOE320"}, status=status)
