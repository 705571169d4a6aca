"""`/admin/webhooks` and `/admin/deliveries` (contract section 11): endpoints, test events, the
delivery log and manual retries, on the `Webhooks` service the tenant portal uses too."""

from __future__ import annotations

from aiohttp import web

from gateway.accounts.views import listing
from gateway.admin.api import actor, json_response, read_json
from gateway.admin.queries import DeliveryLog, WebhookList, read_query
from gateway.events.service import Webhooks, delivery_view, endpoint_view
from gateway.observability.records import decode_cursor, encode_cursor

WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks", Webhooks)


async def create_webhook(request: web.Request) -> web.Response:
    endpoint, secret = await request.app[WEBHOOKS].create(await read_json(request), actor(request))
    return json_response({**endpoint_view(endpoint), "secret": secret}, 201)


async def list_webhooks(request: web.Request) -> web.Response:
    q = read_query(WebhookList, request.query)
    endpoints, total = await request.app[WEBHOOKS].list_endpoints(
        tenant_filter=q.tenant_id or None, page=q.page, per_page=q.per_page)
    return json_response(listing([endpoint_view(e) for e in endpoints], total, q.page, q.per_page))


async def get_webhook(request: web.Request) -> web.Response:
    return json_response(endpoint_view(await request.app[WEBHOOKS].get(request.match_info["id"])))


async def patch_webhook(request: web.Request) -> web.Response:
    webhooks = request.app[WEBHOOKS]
    endpoint = await webhooks.update(request.match_info["id"], await read_json(request), actor(request))
    return json_response(endpoint_view(endpoint))


async def rotate_secret(request: web.Request) -> web.Response:
    """A new signing secret, in this answer only; `{"expires_in": seconds}` (the body may be left
    out: 24 hours) is how long the replaced one keeps signing beside it."""
    body = await read_json(request) if request.body_exists else None
    endpoint, secret = await request.app[WEBHOOKS].rotate_secret(request.match_info["id"], body, actor(request))
    return json_response({**endpoint_view(endpoint), "secret": secret})


async def delete_webhook(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete(request.match_info["id"], actor(request))
    return web.Response(status=204)


async def send_test_event(request: web.Request) -> web.Response:
    event_id = await request.app[WEBHOOKS].send_test(request.match_info["id"], actor(request))
    return json_response({"event_id": event_id, "type": "webhook.test"}, 202)


async def list_deliveries(request: web.Request) -> web.Response:
    """Oldest first after `after`; with `order=desc`, newest first before `after` (console paging)."""
    q = read_query(DeliveryLog, request.query)
    after = decode_cursor(q.after)
    deliveries = await request.app[WEBHOOKS].deliveries(
        request.match_info["id"], after=after, limit=q.limit, newest_first=q.order == "desc")
    last = deliveries[-1].id if deliveries else after
    return json_response({"data": [delivery_view(d) for d in deliveries],
                          "next_cursor": encode_cursor(last if last is not None else 0)})


async def retry_delivery(request: web.Request) -> web.Response:
    delivery = await request.app[WEBHOOKS].retry(request.match_info["id"], actor(request))
    return json_response(delivery_view(delivery), 202)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/admin/webhooks", create_webhook)
    r.add_get("/admin/webhooks", list_webhooks)
    r.add_get("/admin/webhooks/{id}", get_webhook)
    r.add_patch("/admin/webhooks/{id}", patch_webhook)
    r.add_delete("/admin/webhooks/{id}", delete_webhook)
    r.add_post("/admin/webhooks/{id}/test", send_test_event)
    r.add_post("/admin/webhooks/{id}/rotate-secret", rotate_secret)
    r.add_get("/admin/webhooks/{id}/deliveries", list_deliveries)
    r.add_post("/admin/deliveries/{id}/retry", retry_delivery)
