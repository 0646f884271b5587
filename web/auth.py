"""Who is calling: the Bearer access token, checked before any handler runs."""

from __future__ import annotations

from aiohttp import web

from fitnus.accounts.models import Role
from fitnus.accounts.tokens import Principal
from fitnus.errors import Forbidden, NotAuthenticated
from web.keys import ACCESS_TOKENS


def authenticate(request: web.Request) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("a Bearer access token is required")
    return request.app[ACCESS_TOKENS].verify(token.strip())


def require_admin(principal: Principal) -> None:
    """Admins' endpoints answer 403 admin_role_required to anyone else."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("for admins only", code="admin_role_required")
