"""`/admin/`: the key console, static files shipped in the package, talking only to the admin API.

The page is public (it holds nothing until the operator signs in with the admin token, which
stays in sessionStorage and goes out only in the Authorization header of API calls). Its CSP
allows scripts and styles from this origin only, so nothing rendered from the API can run.
The scripts are components shared with other modes (see `console/js/main.js`); the view and its
filters live in the URL's fragment, so the server has one page to serve.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("console")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html", ".css": "text/css", ".js": "text/javascript",
    ".svg": "image/svg+xml", ".ico": "image/vnd.microsoft.icon",
}


def assets() -> dict[str, tuple[bytes, str]]:
    """Every asset read once at startup: the set of servable names is fixed, so no path is ever
    joined from the request. A second page built on the same components (the tenant portal)
    serves these same files under its own path, with the same headers."""
    out: dict[str, tuple[bytes, str]] = {}
    for path in STATIC.rglob("*"):
        if path.is_file() and path.suffix in _TYPES:
            out[path.relative_to(STATIC).as_posix()] = (path.read_bytes(), _TYPES[path.suffix])
    return out


def add_routes(app: web.Application) -> None:
    files = assets()

    def serve(name: str) -> web.Response:
        found = files.get(name)
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, content_type=content_type, headers=SECURITY_HEADERS)

    async def index(request: web.Request) -> web.Response:
        return serve("index.html")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/admin/")

    async def asset(request: web.Request) -> web.Response:
        return serve(request.match_info["name"])

    async def favicon(request: web.Request) -> web.Response:
        """Browsers ask for it at the root whatever the page links; without it every visit logs a 404."""
        return serve("favicon.ico")

    app.router.add_get("/admin", redirect)
    app.router.add_get("/admin/", index)
    app.router.add_get("/admin/console/{name:.+}", asset)
    app.router.add_get("/favicon.ico", favicon)
