"""`/admin/openapi.json` and `/admin/docs`: the document, and Swagger UI from the installed package.

Nothing is fetched from the internet: the Swagger UI files come from the `swagger-ui-bundle`
package, and the page has no inline script so the console's strict CSP holds here too.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from gateway.admin.api import ACCOUNTS
from gateway.admin.openapi import document, for_swagger_ui_4
from gateway.config import Config

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gateway admin API</title>
<link rel="stylesheet" href="/admin/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/admin/docs/assets/swagger-ui-bundle.js"></script>
<script src="/admin/docs/init.js"></script>
</body>
</html>
"""
INIT = """window.ui = SwaggerUIBundle({url: "/admin/openapi.json?ui=3.0", dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: false});
"""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def add_routes(app: web.Application, token_path: str | None = None) -> None:
    """`token_path` is read from the running configuration; the argument is kept for callers."""
    rendered: dict[int, tuple[Config, bytes, bytes]] = {}

    def bodies(cfg: Config) -> tuple[bytes, bytes]:
        # the document follows the running configuration (a reload can change the plans)
        cached = rendered.get(id(cfg))
        if cached is None or cached[0] is not cfg:
            doc = document(cfg)
            cached = (cfg, json.dumps(doc).encode(), json.dumps(for_swagger_ui_4(doc)).encode())
            rendered.clear()
            rendered[id(cfg)] = cached
        return cached[1], cached[2]

    async def openapi(request: web.Request) -> web.Response:
        body, ui_body = bodies(request.app[ACCOUNTS].cfg)
        payload = ui_body if request.query.get("ui") == "3.0" else body
        return web.Response(body=payload, content_type="application/json")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", headers=SECURITY_HEADERS)

    async def init(request: web.Request) -> web.Response:
        return web.Response(text=INIT, content_type="application/javascript")

    app.router.add_get("/admin/openapi.json", openapi)
    app.router.add_get("/admin/docs", page)
    app.router.add_get("/admin/docs/init.js", init)
    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - a declared dependency
        return
    app.router.add_static("/admin/docs/assets", Path(swagger_ui_bundle.swagger_ui_path))
