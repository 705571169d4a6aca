"""The operator's gates on a tenant (contract section 9): API access and write access, enforced on
the proxy path at once, and at key creation and rotation."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.access.test_keys_e2e import ADMIN, call, routes, tenant_and_key
from tests.conftest import ADMIN_TOKEN, admin_url, proxy_url, read_json

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def gw(start_gateway, upstream):
    return await start_gateway(routes=routes(upstream[0]))


async def admin(method: str, gw: Any, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client, client.request(
            method, admin_url(gw, path), json=body, headers=AUTH) as resp:
        return resp.status, await read_json(resp)


async def test_api_access_off_refuses_every_key_and_token_at_once_and_on_again_restores(gw, https, upstream) -> None:
    key, secret = await tenant_and_key(gw)
    async with https.post(proxy_url(gw, gw.cfg.tokens.path), json={"api_key": secret}) as resp:
        token = (await read_json(resp))["token"]
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200  # cached now
    status, tenant = await admin("PATCH", gw, "/admin/tenants/acme", {"api_enabled": False})
    assert status == 200 and tenant["api_enabled"] is False and tenant["write_enabled"] is True
    hits = upstream[1].hits
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {token}"}):
        status, body, _ = await call(https, gw, "/api/v1/visitors", **headers)
        assert (status, body["error"]["code"]) == (403, "API_ACCESS_DISABLED")
    async with https.post(proxy_url(gw, gw.cfg.tokens.path), json={"api_key": secret}) as resp:
        assert resp.status == 403 and (await read_json(resp))["error"]["code"] == "API_ACCESS_DISABLED"
    assert upstream[1].hits == hits
    status, body = await admin("POST", gw, "/admin/keys", {"tenant_id": "acme", "name": "more", "scope": "read_only"})
    assert status == 422 and body["error"]["details"][0]["field"] == "tenant_id"
    status, body = await admin("POST", gw, f"/admin/keys/{key.id}/rotate")
    assert status == 422
    assert (await admin("PATCH", gw, "/admin/tenants/acme", {"api_enabled": True}))[0] == 200
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    audit = (await admin("GET", gw, "/admin/audit"))[1]["data"]
    assert [e["action"] for e in audit].count("tenant.updated") == 2


async def test_write_access_off_lets_reads_through_refuses_writes_and_writing_keys(gw, https) -> None:
    _, secret = await tenant_and_key(gw)
    _, reader = await tenant_and_key(gw, scope="read_only", name="reader")
    status, _ = await admin("PATCH", gw, "/admin/tenants/acme", {"write_enabled": False})
    assert status == 200
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    for key in (secret, reader):  # the gate, not the read-only scope, is what the caller is told
        status, body, _ = await call(https, gw, "/api/v1/visitors", "POST", **{"X-API-Key": key})
        assert (status, body["error"]["code"]) == (403, "WRITE_DISABLED")
    for scope, permissions in (("read_write", None), ("custom", [{"methods": ["GET", "DELETE"], "path": "/a"}]),
                               ("custom", [{"methods": ["*"], "path": "/a"}])):
        body: dict[str, Any] = {"tenant_id": "acme", "name": "w", "scope": scope}
        if permissions:
            body["permissions"] = permissions
        status, answer = await admin("POST", gw, "/admin/keys", body)
        assert status == 422 and answer["error"]["details"][0]["field"] == "scope", (scope, answer)
    for scope, permissions in (("read_only", None), ("custom", [{"methods": ["GET", "HEAD"], "path": "/a"}])):
        body = {"tenant_id": "acme", "name": "r", "scope": scope}
        if permissions:
            body["permissions"] = permissions
        assert (await admin("POST", gw, "/admin/keys", body))[0] == 201


async def test_a_disabled_tenant_cannot_get_new_keys(gw) -> None:
    await tenant_and_key(gw)
    await gw.accounts.update_tenant("acme", {"disabled": True}, ADMIN)
    status, body = await admin("POST", gw, "/admin/keys", {"tenant_id": "acme", "name": "x", "scope": "read_only"})
    assert status == 422 and "disabled" in body["error"]["message"]


async def test_gates_are_set_at_creation_and_validated(gw) -> None:
    status, tenant = await admin("POST", gw, "/admin/tenants",
                                 {"id": "gated", "name": "Gated", "plan": "starter", "api_enabled": False})
    assert status == 201 and tenant["api_enabled"] is False and tenant["write_enabled"] is True
    status, body = await admin("PATCH", gw, "/admin/tenants/gated", {"write_enabled": "no"})
    assert status == 422 and body["error"]["details"] == [{"field": "write_enabled", "issue": "must be true or false"}]
