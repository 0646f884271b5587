"""Who is calling: the Bearer access token, checked before any handler runs."""

from __future__ import annotations

from aiohttp import web

from fitnus.accounts.tokens import Principal
from fitnus.errors import NotAuthenticated
from web.keys import ACCESS_TOKENS


def authenticate(request: web.Request) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("a Bearer access token is required")
    return request.app[ACCESS_TOKENS].verify(token.strip())
