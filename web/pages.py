"""The web app's pages: server-rendered shells (aiohttp-jinja2) whose scripts
call the same JSON API as any client, so the API stays the one contract.

What a page shows to anyone (a center, its programs) is rendered here too, so
it reads with JavaScript off; what is yours (calendar, wallet) needs your
session, which only the page's script holds."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from fitnus.auctions import service as auctions
from fitnus.centers import service
from fitnus.clubs import service as clubs
from fitnus.demo import DEMO_ACCOUNTS
from fitnus.errors import NotFound
from fitnus.search.index import CenterQuery
from web.centers import center_out
from web.keys import CENTER_INDEX, SETTINGS, service_zone

HERE = Path(__file__).resolve().parent
PRODUCTION = "production"
STATIC_PREFIX = "/static/"
# Static URLs carry their content's hash (?v=), so a browser may keep them.
IMMUTABLE = "public, max-age=31536000, immutable"
SPORT_WORDS = {
    "gym": "헬스", "pilates": "필라테스", "yoga": "요가", "boxing": "복싱",
    "climbing": "클라이밍", "swimming": "수영", "basketball": "농구", "futsal": "풋살",
    "running": "러닝", "crossfit": "크로스핏", "dance": "댄스", "golf": "골프",
    "tennis": "테니스", "badminton": "배드민턴", "spinning": "스피닝",
}
# The search form's fields and their defaults, and its radii (metres).
SEARCH_FORM = {"place": "", "radius_m": "3000", "sport": "", "q": ""}
RADII_M = ("1000", "3000", "5000", "10000", "30000")
DEFAULT_RADIUS_M = 3_000.0
MAX_QUERY_CHARS = 100
# Places to search near without the browser's location (lat, lng).
PLACES = {
    "서울시청": (37.5663, 126.9779), "강남역": (37.4979, 127.0276),
    "홍대입구역": (37.5572, 126.9245), "잠실역": (37.5133, 127.1001),
    "판교역": (37.3948, 127.1112), "부산 서면역": (35.1577, 129.0592),
}

Context = Mapping[str, Any]
Page = Callable[[web.Request], Awaitable[Context]]


async def _nothing(request: web.Request) -> Context:
    return {}


async def _home(request: web.Request) -> Context:
    production = request.app[SETTINGS].env == PRODUCTION
    return {"demo_accounts": () if production else DEMO_ACCOUNTS, "production": production}


async def _path_ids(request: web.Request) -> Context:
    """The ids in the path (``/owner/centers/{center_id}/kiosk``), for the page's script."""
    return {name: int(value) for name, value in request.match_info.items()}


async def _centers(request: web.Request) -> Context:
    """With the search form's fields in the address (sent with JavaScript
    off, or a link someone shared), the first page of what the API finds."""
    asked = {name: request.query.get(name, default) for name, default in SEARCH_FORM.items()}
    point = _point(asked["place"])
    if point is None:
        return {"asked": asked, "found": None}
    radius = float(asked["radius_m"]) if asked["radius_m"] in RADII_M else DEFAULT_RADIUS_M
    page = await request.app[CENTER_INDEX].search(CenterQuery(
        latitude=point[0], longitude=point[1], radius_m=radius,
        sport=asked["sport"] if asked["sport"] in SPORT_WORDS else None,
        text=asked["q"].strip()[:MAX_QUERY_CHARS] or None))
    found = [{**json.loads(hit.summary_json), "distance_m": hit.distance_m}
             for hit in page.hits]
    return {"asked": asked, "found": found}


def _point(place: str) -> tuple[float, float] | None:
    """``"37.5663,126.9779"`` as a point, or None for anything else."""
    try:
        latitude, longitude = (float(part) for part in place.split(","))
    except ValueError:
        return None
    if -90 <= latitude <= 90 and -180 <= longitude <= 180:
        return latitude, longitude
    return None


async def _club(request: web.Request) -> Context:
    club_id = int(request.match_info["club_id"])
    return {"club_id": club_id, "club": await clubs.club_by_id(club_id)}


async def _auction(request: web.Request) -> Context:
    auction_id = int(request.match_info["auction_id"])
    return {"auction_id": auction_id, "auction": await auctions.auction_by_id(auction_id)}


async def _center(request: web.Request) -> Context:
    center = await service.center_by_id(int(request.match_info["center_id"]))
    return {"center": center_out(center, service_zone(request))}


# An id in a page's path: as the API's, at most 18 digits (below 2**63).
ID = r"\d{1,18}"

# path, template, what the template needs beyond the request
PAGES: tuple[tuple[str, str, Page], ...] = (
    ("/", "home.html", _home),
    ("/login", "login.html", _nothing),
    ("/signup", "signup.html", _nothing),
    ("/login/kakao", "login_kakao.html", _nothing),
    ("/centers", "centers.html", _centers),
    (f"/centers/{{center_id:{ID}}}", "center.html", _center),
    ("/me/calendar", "calendar.html", _nothing),
    ("/me/wallet", "wallet.html", _nothing),
    ("/clubs", "clubs.html", _nothing),
    (f"/clubs/{{club_id:{ID}}}", "club.html", _club),
    ("/auctions", "auctions.html", _nothing),
    (f"/auctions/{{auction_id:{ID}}}", "auction.html", _auction),
    ("/owner", "owner.html", _nothing),
    (f"/owner/centers/{{center_id:{ID}}}/kiosk", "kiosk.html", _path_ids),
    ("/admin", "admin.html", _nothing),
)


def _page(template: str, context: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def render(request: web.Request) -> web.Response:
        try:
            values = await context(request)
        except NotFound:
            return aiohttp_jinja2.render_template("not_found.html", request, {}, status=404)
        return aiohttp_jinja2.render_template(template, request, dict(values))

    return render


async def _cache_static(request: web.Request, response: web.StreamResponse) -> None:
    if (request.path.startswith(STATIC_PREFIX) and "v" in request.query
            and response.status == HTTPStatus.OK):
        response.headers["Cache-Control"] = IMMUTABLE


def install(app: web.Application) -> None:
    static = app.router.add_static(STATIC_PREFIX, HERE / "static", name="static",
                                   append_version=True)
    environment = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
    # aiohttp hashes the file's content for each URL it builds: once per file here.
    environment.globals["static"] = functools.cache(
        lambda filename: str(static.url_for(filename=filename)))
    environment.globals["kakao_login"] = app[SETTINGS].kakao_login is not None
    environment.globals["sport_words"] = SPORT_WORDS
    environment.globals["places"] = PLACES
    environment.globals["radii_m"] = RADII_M
    app.on_response_prepare.append(_cache_static)
    for path, template, context in PAGES:
        app.router.add_get(path, _page(template, context))
