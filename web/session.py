"""The web app's session: the refresh token lives in an HttpOnly cookie that
only these endpoints read, and the page keeps the access token in memory.

A script or an app uses /api/v1/auth/*, which answer both tokens in the body."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from fitnus.accounts.service import TokenPair
from fitnus.accounts.tokens import Principal
from fitnus.errors import Forbidden, NotAuthenticated
from web.accounts import LoginBody, RefreshBody, UserOut, user_out
from web.cookies import set_private_cookie
from web.keys import ACCESS_TOKENS, ACCOUNTS, SETTINGS
from web.routing import Api
from web.schemas import json

api = Api()

COOKIE = "fitnus_session"
COOKIE_PATH = "/api/v1/session"
# A page that navigated away mid-refresh never received the new cookie, and
# presents the spent one on the next page: within this long, that is not theft.
REUSE_GRACE_SECONDS = 10
# Fetch metadata a browser sends with a request of our own pages.
OUR_SITE = frozenset({"same-origin", "none"})


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"


def _from_our_pages(request: web.Request) -> None:
    """A session is opened, kept and closed only by our own pages: another
    site's form must not sign a browser in to an account of its choosing
    (login CSRF), nor spend its session. Browsers say where a request comes
    from (Sec-Fetch-Site, else Origin); a client that says nothing is not a
    browser acting for another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site not in OUR_SITE:
            raise CrossSiteRequest("the session is ours to open from our own pages")
        return
    origin = request.headers.get("Origin")
    public = request.app[SETTINGS].public_base_url
    ours = {f"{request.scheme}://{request.host}", *([public] if public else [])}
    if origin is not None and origin not in ours:
        raise CrossSiteRequest("the session is ours to open from our own pages")


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
                   "reads; 403 cross_site_request from another site's page",
           body=LoginBody, responses={200: SessionOut}, errors=(400, 401, 403, 429))
async def open_session(request: web.Request, *, body: LoginBody) -> web.Response:
    _from_our_pages(request)
    pair = await request.app[ACCOUNTS].login(
        email=body.email, password=body.password, address=request.remote or "unknown")
    return await _session(request, pair)


@api.route("PUT", "/api/v1/session", tag="accounts",
           summary="Keep a refresh token in the session cookie (after Kakao login, whose "
                   "redirect carries the pair in the fragment): it is spent for a new pair",
           body=RefreshBody, responses={200: SessionOut}, errors=(400, 401, 403))
async def adopt_session(request: web.Request, *, body: RefreshBody) -> web.Response:
    _from_our_pages(request)
    pair = await request.app[ACCOUNTS].refresh(refresh_token=body.refresh_token)
    return await _session(request, pair)


@api.route("POST", "/api/v1/session/refresh", tag="accounts",
           summary="A new access token for the web app, spending the session cookie's "
                   "refresh token and setting its successor; 401 without a live session. "
                   "The cookie just spent is taken again for 10 s (a page that navigated "
                   "away mid-refresh never received its successor); later it revokes the "
                   "session", responses={200: SessionOut}, errors=(401, 403))
async def refresh_session(request: web.Request) -> web.Response:
    _from_our_pages(request)
    refresh_token = request.cookies.get(COOKIE)
    if not refresh_token:
        raise NotAuthenticated("no session: sign in", code="not_authenticated")
    return await _session(request, await request.app[ACCOUNTS].refresh(
        refresh_token=refresh_token, reuse_grace_seconds=REUSE_GRACE_SECONDS))


@api.route("DELETE", "/api/v1/session", tag="accounts",
           summary="Sign out of the web app: the session's refresh token family is revoked "
                   "and its cookie removed", auth=True, responses={204: None},
           errors=(401, 403))
async def close_session(request: web.Request, *, principal: Principal) -> web.Response:
    _from_our_pages(request)
    refresh_token = request.cookies.get(COOKIE)
    if refresh_token:
        await request.app[ACCOUNTS].logout(user_id=principal.user_id,
                                           refresh_token=refresh_token)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response
