"""Signing in with Kakao, and linking a Kakao account to yours."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from fitnus.accounts import kakao
from fitnus.accounts.kakao import KakaoLogin
from fitnus.accounts.tokens import Principal
from fitnus.errors import Unavailable
from web.accounts import TokenPairOut
from web.cookies import set_private_cookie
from web.keys import ACCOUNTS, CLOCK, KAKAO_LOGIN
from web.routing import Api
from web.schemas import json

api = Api()

COOKIE = "fitnus_kakao_login"
COOKIE_PATH = "/api/v1/auth/kakao"
Param = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class KakaoLoginNotConfigured(Unavailable):
    code = "kakao_login_not_configured"


class StartQuery(BaseModel):
    redirect: Param | None = Field(
        default=None, description="a path on this site: after signing in, 303 there with the "
                                  "tokens in the fragment, instead of answering them")


class CallbackQuery(BaseModel):
    code: Param
    state: Param


class AuthorizeOut(BaseModel):
    authorize_url: str


def _login(request: web.Request) -> KakaoLogin:
    login = request.app[KAKAO_LOGIN]
    if login is None:
        raise KakaoLoginNotConfigured("Kakao login is not configured on this server")
    return login


def _with_cookie(response: web.StreamResponse, request: web.Request, value: str) -> None:
    set_private_cookie(response, request, name=COOKIE, value=value,
                       max_age=kakao.LOGIN_WINDOW_SECONDS, path=COOKIE_PATH)


@api.route("GET", "/api/v1/auth/kakao/start", tag="accounts",
           summary="Sign in with Kakao: 302 to Kakao's authorize page, with a state and "
                   "nonce bound to this browser by a short-lived signed cookie",
           query=StartQuery, responses={302: None}, errors=(400, 503))
async def kakao_start(request: web.Request, *, query: StartQuery) -> web.Response:
    authorize_url, cookie = _login(request).start(redirect=query.redirect)
    response = web.HTTPFound(authorize_url)
    _with_cookie(response, request, cookie)
    raise response


@api.route("GET", "/api/v1/auth/kakao/callback", tag="accounts",
           summary="Kakao's redirect: signs in (creating on first login) the account linked "
                   "to the Kakao user id, or links it to the account that started the link; "
                   "200 with the token pair, or 303 to the start's redirect with the tokens "
                   "in the fragment. 400 invalid_state (not started in this browser); 401 "
                   "kakao_login_failed (the id_token is not Kakao's, expired, or for "
                   "another login); 409 kakao_linked_elsewhere",
           query=CallbackQuery, responses={200: TokenPairOut, 204: None, 303: None},
           errors=(400, 401, 409, 503))
async def kakao_callback(request: web.Request, *, query: CallbackQuery) -> web.Response:
    login = _login(request)
    cookie = login.cookie(request.cookies.get(COOKIE), state=query.state)
    identity = await login.identity(code=query.code, nonce=cookie.nonce)
    now = request.app[CLOCK].now()
    if cookie.link_user_id is not None:
        await kakao.link(cookie.link_user_id, identity, now=now)
        response = web.Response(status=204)
    else:
        user = await kakao.account_for(identity, now=now)
        pair = TokenPairOut(**(await request.app[ACCOUNTS].sign_in(user)).__dict__)
        if cookie.redirect is None:
            response = json(pair)
            response.headers["Cache-Control"] = "no-store"
        else:
            response = web.Response(status=303, headers={
                "Location": f"{cookie.redirect}#{urlencode(pair.model_dump())}"})
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


@api.route("POST", "/api/v1/me/kakao", tag="accounts",
           summary="Link a Kakao account to yours: the authorize URL to send this browser "
                   "to (its cookie carries the link); the callback answers 204",
           auth=True, responses={200: AuthorizeOut}, errors=(401, 503))
async def kakao_link(request: web.Request, *, principal: Principal) -> web.Response:
    authorize_url, cookie = _login(request).start(redirect=None,
                                                  link_user_id=principal.user_id)
    response = json(AuthorizeOut(authorize_url=authorize_url))
    _with_cookie(response, request, cookie)
    return response


@api.route("DELETE", "/api/v1/me/kakao", tag="accounts",
           summary="Unlink Kakao from your account; 409 password_required when Kakao is "
                   "your only way in", auth=True, responses={204: None}, errors=(401, 409))
async def kakao_unlink(request: web.Request, *, principal: Principal) -> web.Response:
    await kakao.unlink(principal.user_id)
    return web.Response(status=204)
