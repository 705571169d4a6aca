"""`GET /metrics` on the admin listener, in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.observability.metrics import scrape_registry

REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)
BEFORE_SCRAPE: web.AppKey[Callable[[], None]] = web.AppKey("before_scrape")


async def metrics(request: web.Request) -> web.Response:
    before = request.app.get(BEFORE_SCRAPE)
    if before is not None:
        before()  # this worker's own figures are current; the others' at most a second old
    body = generate_latest(scrape_registry(request.app[REGISTRY]))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
