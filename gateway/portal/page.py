"""`<portal.path>/`: the portal page, the console's components in their "portal mode".

The page and its own module live in `portal/page/`; the components, stylesheet and vendored
uPlot are the console's own files (`admin/console/`), served under `<portal.path>/console/`, so
there is one copy of each. Every file is read once at startup (no path is ever joined from a
request), answered with its content type, the console's CSP and `Cache-Control: no-cache` with
an ETag, so a browser revalidates each load (a 304 costs no body) and never runs a stale script
after an upgrade. The page uses relative URLs only, so it works under any `portal.path`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from gateway.admin.console import SECURITY_HEADERS, assets

PAGE = Path(__file__).with_name("page")
_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


class Asset:
    __slots__ = ("body", "content_type", "etag")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    def answer(self, request: web.Request) -> web.Response:
        headers = {**SECURITY_HEADERS, "ETag": self.etag}
        if self.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, content_type=self.content_type, charset="utf-8"
                            if self.content_type.startswith("text/") else None, headers=headers)


def page_files() -> dict[str, Asset]:
    return {p.name: Asset(p.read_bytes(), _TYPES[p.suffix]) for p in PAGE.iterdir() if p.suffix in _TYPES}


def add_routes(app: web.Application, path: str) -> None:
    """`path` (no trailing slash) redirects to `path/`, the page; `path/page/...` its module,
    `path/console/...` the shared components."""
    own = page_files()
    shared = {name: Asset(body, kind) for name, (body, kind) in assets().items()}

    def serve(files: dict[str, Asset], name: str, request: web.Request) -> web.Response:
        found = files.get(name)
        if found is None:
            raise web.HTTPNotFound()
        return found.answer(request)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(path + "/")

    async def index(request: web.Request) -> web.Response:
        return serve(own, "index.html", request)

    async def module(request: web.Request) -> web.Response:
        return serve(own, request.match_info["name"], request)

    async def component(request: web.Request) -> web.Response:
        return serve(shared, request.match_info["name"], request)

    app.router.add_get(path, redirect)
    app.router.add_get(path + "/", index)
    app.router.add_get(path + "/page/{name}", module)
    app.router.add_get(path + "/console/{name:.+}", component)
