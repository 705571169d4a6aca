"""`GET /admin/usage`: a tenant's or a key's usage series, read from the rollups (contract 13)."""

from __future__ import annotations

from aiohttp import web

from gateway.admin.api import ACCOUNTS, json_response
from gateway.admin.queries import Usage, read_query
from gateway.admin.records_api import RECORDER
from gateway.errors import NotFound
from gateway.observability.usage_query import plan_query, series


async def usage(request: web.Request) -> web.Response:
    """`tenant_id` or `key_id` (or both: the key must be the tenant's), `from`, `to` (RFC 3339 or
    Unix seconds; default: the granularity's usual span up to now) and `granularity`."""
    accounts = request.app[ACCOUNTS]
    recorder = request.app[RECORDER]
    q = read_query(Usage, request.query)
    query = plan_query(granularity=q.granularity, start=q.from_, to=q.to, tenant_id=q.tenant_id or None,
                       key_id=q.key_id or None, now=accounts.now().timestamp())
    if query.key_id is not None:
        key = await accounts.key(query.key_id)
        if query.tenant_id is not None and key.tenant_id != query.tenant_id:
            raise NotFound("no such key in this tenant")
    elif query.tenant_id is not None:
        await accounts.tenant(query.tenant_id)
    await recorder.call_buffer.flush()  # what was served until now is counted
    return json_response(await series(recorder.store, query))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/usage", usage)
