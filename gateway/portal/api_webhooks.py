"""The tenant's own webhooks in the portal (contract sections 9 and 11): the admin API's endpoints
and shapes, confined to the signed-in person's tenant by the `Webhooks` service itself (its
`tenant` argument: another tenant's endpoint or delivery answers 404, as one that does not exist;
a new endpoint belongs to the tenant and receives its events only). The secret is in the
creation's and a rotation's answer only; URLs meet the same SSRF rules as the admin API's.

Owners and admins only, for reading too: an endpoint's URL often carries a credential of the
receiver (chat and incident tools put one in the path), and its delivery log shows what the
receiver answered, so members and viewers see none of it (GitHub shows webhooks to admins only).
"""

from __future__ import annotations

from aiohttp import web

from gateway.accounts.views import listing
from gateway.admin.queries import DeliveryLog, Paging, read_query
from gateway.events.service import delivery_view, endpoint_view
from gateway.observability.records import decode_cursor, encode_cursor
from gateway.portal.authz import Caller, Endpoints
from gateway.portal.http import json_response, read_json
from gateway.portal.services import PORTAL

routes = Endpoints()


@routes.add("GET", "/webhooks", needs="webhooks")
async def list_webhooks(request: web.Request, caller: Caller) -> web.StreamResponse:
    q = read_query(Paging, request.query)
    endpoints, total = await request.app[PORTAL].webhooks.list_endpoints(
        tenant=caller.tenant.id, page=q.page, per_page=q.per_page)
    return json_response(listing([endpoint_view(e) for e in endpoints], total, q.page, q.per_page))


@routes.add("POST", "/webhooks", needs="webhooks")
async def create_webhook(request: web.Request, caller: Caller) -> web.StreamResponse:
    """A new endpoint of the tenant's; `tenant_id`, when given, must be the caller's own."""
    endpoint, secret = await request.app[PORTAL].webhooks.create(
        await read_json(request), caller.actor, tenant=caller.tenant.id)
    return json_response({**endpoint_view(endpoint), "secret": secret}, 201)


@routes.add("GET", "/webhooks/{webhook_id}", needs="webhooks")
async def get_webhook(request: web.Request, caller: Caller) -> web.StreamResponse:
    webhooks = request.app[PORTAL].webhooks
    return json_response(endpoint_view(await webhooks.get(request.match_info["webhook_id"], tenant=caller.tenant.id)))


@routes.add("PATCH", "/webhooks/{webhook_id}", needs="webhooks")
async def patch_webhook(request: web.Request, caller: Caller) -> web.StreamResponse:
    """`url`, `events`, `description`, `disabled` (false enables it again)."""
    webhooks = request.app[PORTAL].webhooks
    endpoint = await webhooks.update(request.match_info["webhook_id"], await read_json(request), caller.actor,
                                     tenant=caller.tenant.id)
    return json_response(endpoint_view(endpoint))


@routes.add("DELETE", "/webhooks/{webhook_id}", needs="webhooks")
async def delete_webhook(request: web.Request, caller: Caller) -> web.StreamResponse:
    await request.app[PORTAL].webhooks.delete(request.match_info["webhook_id"], caller.actor, tenant=caller.tenant.id)
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


@routes.add("POST", "/webhooks/{webhook_id}/test", needs="webhooks")
async def send_test_event(request: web.Request, caller: Caller) -> web.StreamResponse:
    event_id = await request.app[PORTAL].webhooks.send_test(
        request.match_info["webhook_id"], caller.actor, tenant=caller.tenant.id)
    return json_response({"event_id": event_id, "type": "webhook.test"}, 202)


@routes.add("POST", "/webhooks/{webhook_id}/rotate-secret", needs="webhooks")
async def rotate_secret(request: web.Request, caller: Caller) -> web.StreamResponse:
    """A new signing secret, in this answer only; the replaced one keeps signing for `expires_in`
    seconds (the body may be left out: 24 hours)."""
    endpoint, secret = await request.app[PORTAL].webhooks.rotate_secret(
        request.match_info["webhook_id"], await read_json(request), caller.actor, tenant=caller.tenant.id)
    return json_response({**endpoint_view(endpoint), "secret": secret})


@routes.add("GET", "/webhooks/{webhook_id}/deliveries", needs="webhooks")
async def list_deliveries(request: web.Request, caller: Caller) -> web.StreamResponse:
    """Oldest first after `after`; with `order=desc`, newest first before it (as the admin API)."""
    q = read_query(DeliveryLog, request.query)
    after = decode_cursor(q.after)
    deliveries = await request.app[PORTAL].webhooks.deliveries(
        request.match_info["webhook_id"], after=after, limit=q.limit, newest_first=q.order == "desc",
        tenant=caller.tenant.id)
    last = deliveries[-1].id if deliveries else after
    return json_response({"data": [delivery_view(d, for_tenant=True) for d in deliveries],
                          "next_cursor": encode_cursor(last if last is not None else 0)})


@routes.add("POST", "/deliveries/{delivery_id}/retry", needs="webhooks")
async def retry_delivery(request: web.Request, caller: Caller) -> web.StreamResponse:
    delivery = await request.app[PORTAL].webhooks.retry(
        request.match_info["delivery_id"], caller.actor, tenant=caller.tenant.id)
    return json_response(delivery_view(delivery, for_tenant=True), 202)
