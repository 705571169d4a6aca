"""`GET /admin/audit` and `GET /admin/calls`: entries after an opaque cursor, with the next one."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.admin.api import json_response
from gateway.admin.queries import AuditPage, CallPage, read_query
from gateway.errors import ValidationError
from gateway.observability.recorder import Recorder
from gateway.observability.records import decode_cursor, encode_cursor, entry_json

RECORDER: web.AppKey[Recorder] = web.AppKey("recorder", Recorder)
MAX_LIMIT = 1000


# The portal's readers (gateway/portal/api_tenant.py); the admin handlers read queries.AuditPage/CallPage.
def limit_param(query: Mapping[str, str]) -> int:
    raw = query.get("limit", "100")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationError(details=[{"field": "limit", "issue": f"must be an integer from 1 to {MAX_LIMIT}"}])
    return value


def order_param(query: Mapping[str, str]) -> bool:
    order = query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ValidationError(details=[{"field": "order", "issue": "must be asc or desc"}])
    return order == "desc"


async def audit(request: web.Request) -> web.Response:
    """Oldest first after `after`; with `order=desc`, newest first before `after` (console paging)."""
    recorder = request.app[RECORDER]
    q = read_query(AuditPage, request.query)
    after, limit, newest_first = decode_cursor(q.after), q.limit, q.order == "desc"
    await recorder.audit_buffer.flush()
    entries = await recorder.store.list_audit(after=after, limit=limit, newest_first=newest_first,
                                              tenant_id=q.tenant_id, action=q.action)
    last = entries[-1].id if entries else after
    next_cursor = None if newest_first and last is None else encode_cursor(last or 0)
    return json_response({"data": [entry_json(e) for e in entries], "next_cursor": next_cursor})


async def calls(request: web.Request) -> web.Response:
    """Oldest first after `after`; with `order=desc`, newest first before `after` (console paging)."""
    recorder = request.app[RECORDER]
    q = read_query(CallPage, request.query)
    cursor, limit, newest_first = decode_cursor(q.after), q.limit, q.order == "desc"
    await recorder.call_buffer.flush()
    entries = await recorder.store.list_calls(
        cursor=cursor, newest_first=newest_first, limit=limit, key_id=q.key_id or None, status=q.status,
        tenant_id=q.tenant_id,
    )
    last = entries[-1].id if entries else cursor
    next_cursor = encode_cursor(last) if last is not None else None
    return json_response({"data": [entry_json(e) for e in entries], "next_cursor": next_cursor})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/audit", audit)
    app.router.add_get("/admin/calls", calls)
