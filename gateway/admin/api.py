"""The admin REST API (contract section 7): tenants, users, keys, audit trail and call log.

Handlers stay thin: parse and validate the HTTP side (JSON, pagination, sort, filters), call the
shared `Accounts` service, render the contract's JSON. Every refusal is a `GatewayError`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.accounts.actors import Actor
from gateway.accounts.people import People
from gateway.accounts.service import Accounts
from gateway.accounts.views import key_view, listing, people_views, plain, tenant_view, whole_listing
from gateway.admin.key_marks import mark, marks_of
from gateway.admin.queries import KeyList, Revoke, TenantList, read_query
from gateway.config import ConfigError
from gateway.errors import BadRequest, PayloadTooLarge, ValidationError
from gateway.reload import Reloader, problems_as_details

ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
RELOADER: web.AppKey[Reloader] = web.AppKey("reloader", Reloader)
PEOPLE: web.AppKey[People] = web.AppKey("people", People)

MAX_BODY = 64 * 1024


def actor(request: web.Request) -> Actor:
    return Actor("admin", request.remote)


async def read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge("admin request bodies are limited to 64 KiB")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge("admin request bodies are limited to 64 KiB")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
        raise BadRequest("the body must be valid JSON") from None


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


async def version(request: web.Request) -> web.Response:
    return json_response({"version": __version__})


async def list_plans(request: web.Request) -> web.Response:
    """The configured plans, read from the running configuration so a reload shows at once."""
    plans = request.app[ACCOUNTS].cfg.plans
    return json_response(whole_listing([{"name": name, "requests_per_minute": plan.requests_per_minute}
                                        for name, plan in plans.items()]))


async def create_tenant(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    tenant = await accounts.create_tenant(await read_json(request), actor(request))
    return json_response(await tenant_view(accounts, tenant), 201)


async def list_tenants(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    q = read_query(TenantList, request.query)
    tenants, total = await accounts.store.list_tenants(page=q.page, per_page=q.per_page, sort=q.sort)
    views = [await tenant_view(accounts, t) for t in tenants]
    return json_response(listing(views, total, q.page, q.per_page))


async def get_tenant(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    tenant = await accounts.tenant(request.match_info["id"])
    return json_response(await tenant_view(accounts, tenant, users=True))


async def patch_tenant(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    tenant = await accounts.update_tenant(request.match_info["id"], await read_json(request), actor(request))
    return json_response(await tenant_view(accounts, tenant, users=True))


async def create_user(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    body = await read_json(request)
    user = await accounts.create_user(request.match_info["id"], body, actor(request))
    return json_response(plain(user), 201)


async def invite_user(request: web.Request) -> web.Response:
    """The operator invites a person (a tenant's first owner, typically) to the tenant portal."""
    people = request.app.get(PEOPLE)
    if people is None:  # an admin application made without the portal's people (some tests)
        raise web.HTTPNotFound()
    user, url = await people.invite(request.match_info["id"], await read_json(request), actor(request))
    return json_response({**plain(user), "status": "invited", "invitation_url": url}, 201)


async def list_users(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    tenant = await accounts.tenant(request.match_info["id"])
    return json_response(whole_listing(await people_views(accounts, tenant.id)))


async def patch_user(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    user = await accounts.update_user(request.match_info["id"], await read_json(request), actor(request))
    return json_response(plain(user))


def _key(accounts: Accounts, key: Any, secret: str | None = None) -> dict[str, Any]:
    view = key_view(key, accounts.now(), accounts.cfg.keys.expiring_soon_days)
    if secret is not None:
        view["key"] = secret
    return view


async def create_key(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    key, secret = await accounts.create_key(await read_json(request), actor(request))
    return json_response(_key(accounts, key, secret), 201)


async def list_keys(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    q = read_query(KeyList, request.query)
    keys, total = await accounts.store.list_keys(
        tenant_id=q.tenant_id or None, status=q.status, now=accounts.now(),
        page=q.page, per_page=q.per_page, sort=q.sort,
    )
    views = [_key(accounts, k) for k in keys]
    await mark(marks_of(request.app), views)
    return json_response(listing(views, total, q.page, q.per_page))


async def get_key(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    view = _key(accounts, await accounts.key(request.match_info["id"]))
    await mark(marks_of(request.app), [view])
    return json_response(view)


async def rotate_key(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    key, secret = await accounts.rotate_key(request.match_info["id"], actor(request))
    return json_response(_key(accounts, key, secret), 201)


async def revoke_key(request: web.Request) -> web.Response:
    """`?wait=true`: answer once every other instance has dropped the key (at most 5 s)."""
    accounts = request.app[ACCOUNTS]
    wait = read_query(Revoke, request.query).wait
    key = await accounts.revoke_key(request.match_info["id"], actor(request))
    body = _key(accounts, key)
    if wait == "true":
        propagation = await accounts.propagate("key", key.id, wait=REVOKE_WAIT)
        body["propagation"] = (
            {"instances": 0, "confirmed": 0, "complete": True, "seconds": 0.0} if propagation is None else
            {"instances": propagation.listeners, "confirmed": propagation.confirmed,
             "complete": propagation.complete, "seconds": round(propagation.seconds, 4)}
        )
    return json_response(body)


REVOKE_WAIT = 5.0


async def reload_config(request: web.Request) -> web.Response:
    """Re-read routes and plans from the config file; a broken file is a 422 and changes nothing."""
    try:
        result = request.app[RELOADER].reload_all()
    except ConfigError as err:
        raise ValidationError("the config file has problems; nothing was changed",
                              details=problems_as_details(err)) from None
    request.app[ACCOUNTS].record(actor(request), "config.reloaded", "config", "gateway")
    return json_response({"routes": result.routes, "plans": result.plans, "not_applied": result.not_applied})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/version", version)
    r.add_post("/admin/reload", reload_config)
    r.add_get("/admin/plans", list_plans)
    r.add_post("/admin/tenants", create_tenant)
    r.add_get("/admin/tenants", list_tenants)
    r.add_get("/admin/tenants/{id}", get_tenant)
    r.add_patch("/admin/tenants/{id}", patch_tenant)
    r.add_post("/admin/tenants/{id}/users", create_user)
    r.add_get("/admin/tenants/{id}/users", list_users)
    r.add_post("/admin/tenants/{id}/invitations", invite_user)
    r.add_patch("/admin/users/{id}", patch_user)
    r.add_post("/admin/keys", create_key)
    r.add_get("/admin/keys", list_keys)
    r.add_get("/admin/keys/{id}", get_key)
    r.add_post("/admin/keys/{id}/rotate", rotate_key)
    r.add_post("/admin/keys/{id}/revoke", revoke_key)
