"""The admin listener's aiohttp application: its middlewares, what its handlers read, its routes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry

from gateway.accounts.people import People
from gateway.accounts.service import Accounts
from gateway.admin import api, console, docs, health, metrics_endpoint, records_api, usage_api, webhooks_api
from gateway.admin.auth import token_middleware
from gateway.admin.errors import error_middleware
from gateway.admin.key_marks import USAGE, Marks
from gateway.admin.openapi import takes_query
from gateway.errors import SERVER, ValidationError
from gateway.events.service import Webhooks
from gateway.observability.recorder import Recorder
from gateway.reload import Reloader


def admin_application(
    *,
    token: str | None,
    accounts: Accounts,
    recorder: Recorder,
    registry: CollectorRegistry,
    webhooks: Webhooks,
    reloader: Reloader,
    readiness: Sequence[health.ReadinessCheck],
    token_path: str,
    before_scrape: Callable[[], None] | None = None,
    usage: Marks | None = None,
    people: People | None = None,
) -> web.Application:
    """`before_scrape`: with several workers, pushes this one's figures before it answers a scrape;
    `usage`: where the key views' anomaly marks come from."""
    app = web.Application(middlewares=[error_middleware, token_middleware(token), _no_stray_query],
                          client_max_size=api.MAX_BODY)
    app.on_response_prepare.append(_name_the_server)
    app[health.READINESS_CHECKS] = readiness
    app[api.ACCOUNTS] = accounts
    app[records_api.RECORDER] = recorder
    app[metrics_endpoint.REGISTRY] = registry
    app[api.RELOADER] = reloader
    if people is not None:
        app[api.PEOPLE] = people
    if usage is not None:
        app[USAGE] = usage
    app[webhooks_api.WEBHOOKS] = webhooks
    if before_scrape is not None:
        app[metrics_endpoint.BEFORE_SCRAPE] = before_scrape
    health.add_routes(app)
    metrics_endpoint.add_routes(app)
    api.add_routes(app)
    records_api.add_routes(app)
    usage_api.add_routes(app)
    webhooks_api.add_routes(app)
    docs.add_routes(app, token_path)
    console.add_routes(app)
    return app


@web.middleware
async def _no_stray_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An operation documented without query parameters refuses any (422), as the others refuse
    those their model does not name: a misspelt filter must not pass for a list of everything."""
    if request.query:
        resource = request.match_info.route.resource
        if resource is not None and takes_query(resource.canonical, request.method) is False:
            raise ValidationError(details=[{"field": name, "issue": "unknown parameter (this operation takes none)"}
                                           for name in dict.fromkeys(request.query)])
    return await handler(request)


async def _name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER  # not aiohttp's name and version
