"""`/` until the web app exists: what this is, and where to go next."""

from __future__ import annotations

from html import escape

from aiohttp import web

from fitnus.demo import DEMO_ACCOUNTS

PRODUCTION = "production"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FitNus</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; }}
td, th {{ padding: 0.2rem 0.8rem 0.2rem 0; text-align: left; }}
</style>
</head>
<body>
<h1>FitNus</h1>
<p>Book single sessions at partner fitness centers with coupons, instead of
monthly memberships. This is the API service; the web app will take this
page's place.</p>
<ul>
<li><a href="/docs">API documentation</a> (Swagger UI; the OpenAPI document is
<a href="/openapi.json">/openapi.json</a>)</li>
<li><a href="/healthz">/healthz</a>: is this process up</li>
<li><a href="#demo-logins">Demo logins</a></li>
</ul>
<h2 id="demo-logins">Demo logins</h2>
{demo_logins}
</body>
</html>
"""

DEMO_NOTE = """<p><code>make run</code> (or <code>fitnus demo-data</code>) loads these
accounts; the README lists them too, under "Demo logins". In /docs, sign in
with <code>POST /api/v1/auth/login</code> and paste the access token into
"Authorize".</p>
"""
NO_DEMO_IN_PRODUCTION = """<p>Not here: production serves no demo data. For a local run,
see the README's "Demo logins".</p>
"""


def front_page(*, environment: str) -> str:
    """The page, built once: demo passwords are shown anywhere but production."""
    if environment == PRODUCTION:
        return PAGE.format(demo_logins=NO_DEMO_IN_PRODUCTION)
    rows = "\n".join(
        f"<tr><td>{escape(account.email)}</td><td>{escape(account.password)}</td>"
        f"<td>{account.role.value}</td><td>{escape(account.name)}</td></tr>"
        for account in DEMO_ACCOUNTS
    )
    table = ("<table>\n<tr><th>email</th><th>password</th><th>role</th><th>name</th></tr>\n"
             f"{rows}\n</table>\n")
    return PAGE.format(demo_logins=DEMO_NOTE + table)


def install(router: web.UrlDispatcher, *, environment: str) -> None:
    body = front_page(environment=environment)

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    router.add_get("/", home)
