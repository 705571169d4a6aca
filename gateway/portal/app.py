"""The portal's aiohttp application: the page at `<portal.path>/` (`page.py`) and the tenant-scoped
API under `<portal.path>/api`.

Middlewares, outermost first: the contract's JSON errors (shared with the admin listener), then
the Origin check of every state-changing request. Each API route is installed from an
`Endpoints` table, so each one passes the session, CSRF and role checks of `authz.py`; the
OpenAPI document of them all (`openapi.py`) is public at `<portal.path>/api/openapi.json`.
"""

from __future__ import annotations

import json

from aiohttp import web

from gateway.admin.errors import error_middleware
from gateway.errors import SERVER
from gateway.portal import api_session, api_tenant, api_webhooks, page
from gateway.portal.authz import Endpoints
from gateway.portal.http import API_HEADERS, MAX_BODY, client_of
from gateway.portal.openapi import document, takes_query
from gateway.portal.services import PORTAL, Portal

docs = Endpoints()
TABLES: tuple[Endpoints, ...] = (api_session.routes, api_tenant.routes, api_webhooks.routes, docs)
DOCUMENT: web.AppKey[bytes] = web.AppKey("openapi", bytes)


@docs.public("GET", "/openapi.json")
async def openapi(request: web.Request) -> web.StreamResponse:
    """Public, like any API's reference: it names no tenant and no secret."""
    return web.Response(body=request.app[DOCUMENT], content_type="application/json",
                        headers={"Cache-Control": "no-cache"})


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER
    for name, value in API_HEADERS.items():
        response.headers.setdefault(name, value)


def api_prefix(path: str) -> str:
    return path.rstrip("/") + "/api"


def portal_app(portal: Portal) -> web.Application:
    app = web.Application(middlewares=[error_middleware, portal.origins.middleware()], client_max_size=MAX_BODY)
    app.on_response_prepare.append(_headers)
    app[PORTAL] = portal
    app[DOCUMENT] = json.dumps(document(TABLES, portal.accounts.cfg)).encode()
    for table in TABLES:
        table.install(app, api_prefix(portal.path), portal.sessions, portal.accounts, client_of, takes_query)
    page.add_routes(app, portal.path.rstrip("/"))
    app.on_cleanup.append(lambda _: portal.close())
    return app
