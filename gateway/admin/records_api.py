"""`GET /admin/audit` and `GET /admin/calls`: entries after an opaque cursor, with the next one."""

from __future__ import annotations

from aiohttp import web

from gateway.admin.api import json_response
from gateway.admin.queries import AuditPage, CallPage, read_query
from gateway.observability.recorder import Recorder
from gateway.observability.records import decode_cursor, encode_cursor, entry_json

RECORDER: web.AppKey[Recorder] = web.AppKey("recorder", Recorder)


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
