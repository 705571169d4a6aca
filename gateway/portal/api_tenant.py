"""The tenant-scoped API (contract section 9): the signed-in person's own tenant only, in the
admin API's shapes. Every id in a path is resolved through the `Caller` (404 for another
tenant's), every list is filtered by the caller's tenant in the store query itself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.accounts import rules
from gateway.accounts.views import listing, person
from gateway.admin.queries import AuditPage, CallPage, KeyList, Usage, read_query
from gateway.errors import InsufficientScope, ValidationError
from gateway.observability.records import AuditEntry, decode_cursor, encode_cursor, entry_json
from gateway.observability.usage_query import plan_query, series
from gateway.portal.authz import Caller, Endpoints
from gateway.portal.http import json_response, read_json
from gateway.portal.requests import AUDIT_QUERY, CALL_QUERY, KEY_QUERY, USAGE_QUERY
from gateway.portal.services import PORTAL

routes = Endpoints()
SET_BY_PORTAL = ("tenant_id", "user_id", "rate_limit_per_minute")


# keys


@routes.add("GET", "/keys", needs="read")
async def list_keys(request: web.Request, caller: Caller) -> web.StreamResponse:
    portal = request.app[PORTAL]
    q = read_query(KeyList, request.query, only=KEY_QUERY)
    keys, total = await portal.accounts.store.list_keys(
        tenant_id=caller.tenant.id, status=q.status, now=portal.accounts.now(), page=q.page, per_page=q.per_page,
        sort=q.sort)
    return json_response(listing([portal.key(k) for k in keys], total, q.page, q.per_page))


@routes.add("POST", "/keys", needs="keys")
async def create_key(request: web.Request, caller: Caller) -> web.StreamResponse:
    """A key of the caller's tenant that belongs to the caller (so their role caps it)."""
    portal = request.app[PORTAL]
    body = rules.require_object(await read_json(request))
    fixed = [{"field": name, "issue": "is set by the portal"} for name in SET_BY_PORTAL if name in body]
    if fixed:
        raise ValidationError(details=fixed)
    key, secret = await portal.accounts.create_key(
        {**body, "tenant_id": caller.tenant.id, "user_id": caller.user.id}, caller.actor)
    return json_response(portal.key(key, secret), 201)


@routes.add("GET", "/keys/{key_id}", needs="read")
async def get_key(request: web.Request, caller: Caller) -> web.StreamResponse:
    return json_response(request.app[PORTAL].key(await caller.key(request.match_info["key_id"])))


@routes.add("POST", "/keys/{key_id}/rotate", needs="keys")
async def rotate_key(request: web.Request, caller: Caller) -> web.StreamResponse:
    """Only the key's owner rotates a key that has one: the new secret acts as that person upstream
    (`X-Gateway-User`), so no owner or admin may take someone else's (as GitHub's organisation
    admins revoke, never regenerate, a member's token); they revoke it. A key with no owner (the
    operator's) is the tenant's: owners and admins rotate it."""
    portal = request.app[PORTAL]
    key = await caller.key(request.match_info["key_id"])
    if key.user_id is not None and key.user_id != caller.user.id:
        raise InsufficientScope("only the key's owner can rotate it (revoke it instead)")
    rotated, secret = await portal.accounts.rotate_key(key.id, caller.actor)
    return json_response(portal.key(rotated, secret), 201)


@routes.add("POST", "/keys/{key_id}/revoke", needs="keys")
async def revoke_key(request: web.Request, caller: Caller) -> web.StreamResponse:
    portal = request.app[PORTAL]
    key = await caller.key(request.match_info["key_id"])
    return json_response(portal.key(await portal.accounts.revoke_key(key.id, caller.actor)))


# users (members of the tenant)


@routes.add("GET", "/users", needs="read")
async def list_users(request: web.Request, caller: Caller) -> web.StreamResponse:
    store = request.app[PORTAL].accounts.store
    logins = {login.user.id: login for login in await store.logins_of_tenant(caller.tenant.id)}
    users = [person(u, logins.get(u.id)) for u in await store.list_users(caller.tenant.id)]
    return json_response(listing(users, len(users), 1, max(1, len(users))))


def _grantable(caller: Caller) -> tuple[str, ...]:
    """Owners make and manage owners; admins everyone below."""
    return rules.ROLES if caller.can("owners") else tuple(r for r in rules.ROLES if r != "owner")


@routes.add("POST", "/users", needs="users")
async def invite(request: web.Request, caller: Caller) -> web.StreamResponse:
    """The URL (shown once, mailed too with `portal.smtp`) is on `portal.public_url`, else the proxy
    listener's address, never this request's Host."""
    portal = request.app[PORTAL]
    user, url = await portal.people.invite(caller.tenant.id, await read_json(request), caller.actor,
                                           roles=_grantable(caller))
    return json_response({**person(user, None, signs_in=True), "status": "invited", "invitation_url": url}, 201)


@routes.add("POST", "/users/{user_id}/invitation", needs="users")
async def reinvite(request: web.Request, caller: Caller) -> web.StreamResponse:
    portal = request.app[PORTAL]
    user = await caller.member(request.match_info["user_id"])
    if user.role not in _grantable(caller):
        raise InsufficientScope("only an owner can invite an owner")
    url = await portal.people.reinvite(user, caller.actor)
    return json_response({**person(user, None, signs_in=True), "status": "invited", "invitation_url": url}, 201)


@routes.add("PATCH", "/users/{user_id}", needs="users")
async def update_user(request: web.Request, caller: Caller) -> web.StreamResponse:
    """`role`, `disabled`, `name`; 422 when it would leave the tenant no active owner, even against a concurrent change."""
    portal = request.app[PORTAL]
    user = await caller.member(request.match_info["user_id"])
    body = rules.require_object(await read_json(request))
    grantable = _grantable(caller)
    if user.role not in grantable or body.get("role") == "owner" and "owner" not in grantable:
        raise InsufficientScope("only an owner can change an owner, or make one")
    # the tenant keeps an owner: decided by the store in the write (two owners demoting each other
    # at once must not both succeed), 422 VALIDATION_ERROR when it would not
    updated = await portal.accounts.update_user(user.id, body, caller.actor, keep_owner=True)
    login = await portal.accounts.store.login_of(user.id)
    return json_response(person(updated, login))


# what happened


@routes.add("GET", "/audit", needs="read")
async def audit(request: web.Request, caller: Caller) -> web.StreamResponse:
    """The tenant's audit trail; an operator's address is not the tenant's business."""
    recorder = request.app[PORTAL].recorder
    q = read_query(AuditPage, request.query, only=AUDIT_QUERY)
    after, newest_first = decode_cursor(q.after), q.order == "desc"
    entries: list[AuditEntry] = []
    if recorder is not None:
        await recorder.audit_buffer.flush()
        entries = await recorder.store.list_audit(after=after, limit=q.limit, newest_first=newest_first,
                                                  tenant_id=caller.tenant.id, action=q.action)
    last = entries[-1].id if entries else after
    next_cursor = encode_cursor(last) if last is not None else (None if newest_first else encode_cursor(0))
    return json_response({"data": [_audit_view(e) for e in entries], "next_cursor": next_cursor})


def _audit_view(entry: AuditEntry) -> dict[str, Any]:
    view = entry_json(entry)
    if not entry.actor.startswith("user:"):
        view.pop("source_ip", None)
    return view


@routes.add("GET", "/calls", needs="read")
async def calls(request: web.Request, caller: Caller) -> web.StreamResponse:
    recorder = request.app[PORTAL].recorder
    q = read_query(CallPage, request.query, only=CALL_QUERY)
    cursor, newest_first = decode_cursor(q.after), q.order == "desc"
    entries = []
    if recorder is not None:
        await recorder.call_buffer.flush()
        entries = await recorder.store.list_calls(cursor=cursor, newest_first=newest_first, limit=q.limit,
                                                  key_id=q.key_id or None, status=q.status,
                                                  tenant_id=caller.tenant.id)
    last = entries[-1].id if entries else cursor
    return json_response({"data": [entry_json(e) for e in entries],
                          "next_cursor": encode_cursor(last) if last is not None else None})


@routes.add("GET", "/usage", needs="read")
async def usage(request: web.Request, caller: Caller) -> web.StreamResponse:
    """The tenant's usage, or one of its keys' (another tenant's key: 404, as one that does not exist)."""
    portal = request.app[PORTAL]
    q = read_query(Usage, request.query, only=USAGE_QUERY)  # the tenant is the caller's
    query = plan_query(granularity=q.granularity, start=q.from_, to=q.to, tenant_id=caller.tenant.id,
                       key_id=q.key_id or None, now=portal.accounts.now().timestamp())
    if query.key_id is not None:
        await caller.key(query.key_id)
    if portal.recorder is None:
        return json_response({"data": []})
    await portal.recorder.call_buffer.flush()  # what was served until now is counted
    return json_response(await series(portal.recorder.store, query))
