"""The web app's session: the refresh token lives in an HttpOnly cookie that
only these endpoints read, and the page keeps the access token in memory.

A script or an app uses /api/v1/auth/*, which answer both tokens in the body."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from fitnus.accounts.service import TokenPair
from fitnus.accounts.tokens import Principal
from fitnus.errors import NotAuthenticated
from web.accounts import LoginBody, RefreshBody, UserOut, user_out
from web.cookies import set_private_cookie
from web.keys import ACCESS_TOKENS, ACCOUNTS, SETTINGS
from web.routing import Api
from web.schemas import json

api = Api()

COOKIE = "fitnus_session"
COOKIE_PATH = "/api/v1/session"


class SessionOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int
    user: UserOut


async def _session(request: web.Request, pair: TokenPair) -> web.Response:
    principal = request.app[ACCESS_TOKENS].verify(pair.access_token)
    user = await request.app[ACCOUNTS].user(principal.user_id)
    response = json(SessionOut(access_token=pair.access_token, expires_in=pair.expires_in,
                               user=user_out(user)))
    response.headers["Cache-Control"] = "no-store"
    set_private_cookie(response, request, name=COOKIE, value=pair.refresh_token,
                       max_age=request.app[SETTINGS].refresh_token_ttl_seconds,
                       path=COOKIE_PATH)
    return response


@api.route("POST", "/api/v1/session", tag="accounts",
           summary="Sign in for the web app: the access token in the body, the refresh "
                   "token in an HttpOnly, SameSite=Lax cookie that only /api/v1/session "
                   "reads", body=LoginBody, responses={200: SessionOut}, errors=(400, 401, 429))
async def open_session(request: web.Request, *, body: LoginBody) -> web.Response:
    pair = await request.app[ACCOUNTS].login(
        email=body.email, password=body.password, address=request.remote or "unknown")
    return await _session(request, pair)


@api.route("PUT", "/api/v1/session", tag="accounts",
           summary="Keep a refresh token in the session cookie (after Kakao login, whose "
                   "redirect carries the pair in the fragment): it is spent for a new pair",
           body=RefreshBody, responses={200: SessionOut}, errors=(400, 401))
async def adopt_session(request: web.Request, *, body: RefreshBody) -> web.Response:
    pair = await request.app[ACCOUNTS].refresh(refresh_token=body.refresh_token)
    return await _session(request, pair)


@api.route("POST", "/api/v1/session/refresh", tag="accounts",
           summary="A new access token for the web app, spending the session cookie's "
                   "refresh token and setting its successor; 401 without a live session",
           responses={200: SessionOut}, errors=(401,))
async def refresh_session(request: web.Request) -> web.Response:
    refresh_token = request.cookies.get(COOKIE)
    if not refresh_token:
        raise NotAuthenticated("no session: sign in", code="not_authenticated")
    return await _session(request, await request.app[ACCOUNTS].refresh(
        refresh_token=refresh_token))


@api.route("DELETE", "/api/v1/session", tag="accounts",
           summary="Sign out of the web app: the session's refresh token family is revoked "
                   "and its cookie removed", auth=True, responses={204: None}, errors=(401,))
async def close_session(request: web.Request, *, principal: Principal) -> web.Response:
    refresh_token = request.cookies.get(COOKIE)
    if refresh_token:
        await request.app[ACCOUNTS].logout(user_id=principal.user_id,
                                           refresh_token=refresh_token)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response
