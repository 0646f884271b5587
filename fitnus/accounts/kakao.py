"""Signing in with Kakao (OpenID Connect).

The browser is sent to Kakao's authorize URL with a ``state`` and a
``nonce`` that a short-lived signed cookie binds to that browser. The
callback checks the state, exchanges the code, and verifies the id_token:
RS256 against Kakao's published keys, issuer ``https://kauth.kakao.com``,
audience our app key, the nonce, the expiry. The account is the one linked
to the Kakao user id; never one found by email (the seed linked by email,
and anyone who set an unverified address on Kakao took the account over)."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import jwt
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from fitnus.accounts.models import KakaoLink, Role, User
from fitnus.errors import Conflict, InvalidInput, NotAuthenticated
from fitnus.wallet.service import open_wallet

ISSUER = "https://kauth.kakao.com"
# The signed browser cookie carrying state and nonce lives this long.
LOGIN_WINDOW_SECONDS = 600
COOKIE_AUDIENCE = "fitnus-kakao-login"
# Kakao's keys rotate rarely; an unknown key id fetches them again at once.
KEYS_CACHE_SECONDS = 3600
# Stored as the password hash of an account that has none: no Argon2 hash
# looks like it, so no password ever matches.
NO_PASSWORD = "!"  # noqa: S105 - a marker, not a password
PLACEHOLDER_EMAIL = "kakao-{}@users.kakao.invalid"


class KakaoLoginFailed(NotAuthenticated):
    """Kakao's answer or id_token could not be trusted."""

    code = "kakao_login_failed"


@dataclass(frozen=True, kw_only=True)
class KakaoLoginConfig:
    auth_base_url: str
    api_base_url: str
    client_id: str
    client_secret: str | None
    redirect_uri: str


@dataclass(frozen=True)
class LoginCookie:
    """What the browser carries from start to callback."""

    state: str
    nonce: str
    redirect: str | None
    link_user_id: int | None


@dataclass(frozen=True)
class KakaoIdentity:
    kakao_id: str
    nickname: str | None
    verified_email: str | None


def is_local_path(target: str) -> bool:
    """A path on this site and nothing a browser could read as another host:
    browsers turn a backslash into a slash and drop tabs and newlines, so a
    slash then a backslash, or a slash, a tab and a slash, start another
    host's address. Neither, nor any space or control character, passes."""
    if not target.startswith("/") or "\\" in target:
        return False
    if any(ord(character) < 0x21 or ord(character) == 0x7F for character in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and not target.startswith("//")


class KakaoLogin:
    def __init__(self, config: KakaoLoginConfig, session: aiohttp.ClientSession, *,
                 cookie_secret: str) -> None:
        self.config = config
        self._session = session
        self._cookie_secret = cookie_secret
        self._keys: jwt.PyJWKSet | None = None
        self._keys_at = 0.0

    # --- Start -----------------------------------------------------------------------

    def start(self, *, redirect: str | None, link_user_id: int | None = None
              ) -> tuple[str, str]:
        """Kakao's authorize URL, and the signed cookie value that binds its
        state and nonce to this browser."""
        if redirect is not None and not is_local_path(redirect):
            raise InvalidInput("redirect is a path on this site", code="invalid_redirect")
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = int(time.time())
        cookie = jwt.encode({
            "aud": COOKIE_AUDIENCE, "iat": now, "exp": now + LOGIN_WINDOW_SECONDS,
            "state": state, "nonce": nonce, "redirect": redirect, "link": link_user_id,
        }, self._cookie_secret, algorithm="HS256")
        query = urlencode({
            "client_id": self.config.client_id, "redirect_uri": self.config.redirect_uri,
            "response_type": "code", "scope": "openid", "state": state, "nonce": nonce})
        return f"{self.config.auth_base_url}/oauth/authorize?{query}", cookie

    def cookie(self, value: str | None, *, state: str | None) -> LoginCookie:
        """The cookie this browser got at the start, if ``state`` is its own."""
        try:
            claims = jwt.decode(value or "", self._cookie_secret, algorithms=["HS256"],
                                audience=COOKIE_AUDIENCE)
        except jwt.PyJWTError:
            claims = None
        if claims is None or state is None or not hmac.compare_digest(claims["state"], state):
            raise InvalidInput("the login was not started in this browser, or too long ago",
                               code="invalid_state")
        return LoginCookie(claims["state"], claims["nonce"], claims.get("redirect"),
                           claims.get("link"))

    # --- Callback ----------------------------------------------------------------------

    async def identity(self, *, code: str, nonce: str) -> KakaoIdentity:
        tokens = await self._post_form(f"{self.config.auth_base_url}/oauth/token", {
            "grant_type": "authorization_code", "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri, "code": code,
            **({"client_secret": self.config.client_secret}
               if self.config.client_secret else {})})
        claims = await self._verified(str(tokens.get("id_token", "")), nonce=nonce)
        me = await self._get(f"{self.config.api_base_url}/v2/user/me",
                             str(tokens.get("access_token", "")))
        if str(me.get("id")) != str(claims["sub"]):
            raise KakaoLoginFailed("Kakao's id_token and profile disagree")
        account = me.get("kakao_account") or {}
        verified = account.get("email") if account.get("is_email_verified") is True else None
        return KakaoIdentity(str(claims["sub"]), claims.get("nickname"), verified)

    async def _verified(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        try:
            key_id = jwt.get_unverified_header(id_token).get("kid")
            key = await self._key(str(key_id))
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=["RS256"], audience=self.config.client_id,
                issuer=ISSUER, options={"require": ["exp", "iat", "sub", "nonce"]})
        except jwt.PyJWTError as error:
            raise KakaoLoginFailed(f"the id_token is not Kakao's: {error}") from error
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            raise KakaoLoginFailed("the id_token was issued for another login")
        return claims

    async def _key(self, key_id: str) -> jwt.PyJWK:
        fresh = time.monotonic() - self._keys_at < KEYS_CACHE_SECONDS
        if self._keys is None or not fresh or key_id not in {k.key_id for k in self._keys.keys}:
            answer = await self._get(f"{self.config.auth_base_url}/.well-known/jwks.json", None)
            self._keys, self._keys_at = jwt.PyJWKSet.from_dict(answer), time.monotonic()
        for key in self._keys.keys:
            if key.key_id == key_id:
                return key
        raise KakaoLoginFailed("the id_token names a key Kakao does not publish")

    async def _post_form(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        return await self._request("POST", url, data=form)

    async def _get(self, url: str, access_token: str | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        return await self._request("GET", url, headers=headers)

    async def _request(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        try:
            async with self._session.request(
                    method, url, timeout=aiohttp.ClientTimeout(total=10), **options) as response:
                answer = await response.json(content_type=None)
                if response.status >= 400 or not isinstance(answer, dict):
                    raise KakaoLoginFailed(f"Kakao answered {response.status}: {answer}")
                return answer
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise KakaoLoginFailed(f"Kakao did not answer: {error!r}") from error


async def account_for(identity: KakaoIdentity, *, now: datetime) -> User:
    """The account linked to this Kakao id, created on its first login. A
    new account takes Kakao's email only if Kakao verified it and no account
    has it; it is never linked to that account."""
    link = await KakaoLink.get_or_none(kakao_id=identity.kakao_id).select_related("user")
    if link is not None:
        return link.user
    email = identity.verified_email
    if email is None or await User.exists(email=email.strip().lower()):
        email = PLACEHOLDER_EMAIL.format(identity.kakao_id)
    try:
        async with in_transaction():
            user = await User.create(email=email.strip().lower(),
                                     name=(identity.nickname or "카카오 사용자")[:100],
                                     role=Role.USER, password_hash=NO_PASSWORD)
            await open_wallet(user_id=user.id, now=now)
            await KakaoLink.create(user_id=user.id, kakao_id=identity.kakao_id, linked_at=now)
    except IntegrityError:
        # The same Kakao account's first login twice at once (the other
        # won), or someone signed up with the email meanwhile.
        link = await KakaoLink.get_or_none(kakao_id=identity.kakao_id).select_related("user")
        if link is not None:
            return link.user
        if email == PLACEHOLDER_EMAIL.format(identity.kakao_id):
            raise
        return await account_for(KakaoIdentity(identity.kakao_id, identity.nickname, None),
                                 now=now)
    return user


async def link(user_id: int, identity: KakaoIdentity, *, now: datetime) -> None:
    existing = await KakaoLink.get_or_none(kakao_id=identity.kakao_id)
    if existing is not None and existing.user_id != user_id:  # type: ignore[attr-defined]
        raise Conflict("this Kakao account signs in to another account",
                       code="kakao_linked_elsewhere")
    if existing is None:
        try:
            await KakaoLink.create(user_id=user_id, kakao_id=identity.kakao_id, linked_at=now)
        except IntegrityError as error:
            raise Conflict("your account is linked to another Kakao account already",
                           code="kakao_already_linked") from error


async def unlink(user_id: int) -> None:
    """Only an account that can still sign in another way (a password)."""
    user = await User.get(id=user_id)
    if user.password_hash == NO_PASSWORD:
        raise Conflict("set a password before unlinking Kakao: it is your only way in",
                       code="password_required")
    await KakaoLink.filter(user_id=user_id).delete()
