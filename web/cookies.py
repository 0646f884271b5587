"""Cookies that only our own pages' requests carry back: HttpOnly, SameSite=Lax,
and Secure when clients reach us over https."""

from __future__ import annotations

from aiohttp import web

from web.keys import SETTINGS


def set_private_cookie(response: web.StreamResponse, request: web.Request, *, name: str,
                       value: str, max_age: int, path: str) -> None:
    """Behind a proxy that ends TLS this request is plain http, but
    PUBLIC_BASE_URL says what clients see."""
    public = request.app[SETTINGS].public_base_url
    secure = public.startswith("https://") if public else request.secure
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="Lax", secure=secure)
