"""The portal's usage: the signed-in person's own tenant and keys only."""

from __future__ import annotations

from typing import Any

from tests.conftest import proxy_url


async def send(https: Any, gw: Any, secret: str, count: int) -> None:
    for _ in range(count):
        async with https.get(proxy_url(gw, "/api/v1/visitors"), headers={"X-API-Key": secret}) as resp:
            await resp.read()
            assert resp.status == 200


async def test_usage_is_the_tenants_own_and_another_tenants_key_is_404(start_portal, https) -> None:
    site = await start_portal()
    await site.tenant("acme")
    await site.tenant("globex", "Globex")
    mine = await site.member("acme", "owner@acme.example")
    viewer = await site.member("acme", "viewer@acme.example", role="viewer")
    theirs = await site.member("globex", "owner@globex.example")
    status, my_key = await mine.api("POST", "/keys", {"name": "mine", "scope": "read_only"})
    assert status == 201
    status, their_key = await theirs.api("POST", "/keys", {"name": "theirs", "scope": "read_only"})
    assert status == 201
    await send(https, site.gateway, my_key["key"], 3)
    await send(https, site.gateway, their_key["key"], 5)

    status, body = await viewer.api("GET", f"/usage?key_id={my_key['id']}&granularity=minute")
    assert status == 200, body
    assert sum(p["requests"] for p in body["data"]) == 3
    assert sum(p["status"]["2xx"] for p in body["data"]) == 3
    # the tenant's own; a tenant_id is not the portal's to name (as on its other lists, a 422)
    status, body = await mine.api("GET", "/usage")
    assert status == 200 and sum(p["requests"] for p in body["data"]) == 3
    assert body["meta"]["tenant_id"] == "acme"
    status, body = await mine.api("GET", "/usage?tenant_id=globex")
    assert status == 422 and [d["field"] for d in body["error"]["details"]] == ["tenant_id"], body
    # another tenant's key answers as one that does not exist
    for key_id in (their_key["id"], "key_doesnotexist"):
        status, body = await mine.api("GET", f"/usage?key_id={key_id}")
        assert (status, body["error"]["code"]) == (404, "NOT_FOUND"), body
    status, body = await mine.api("GET", "/usage?granularity=fortnight")
    assert (status, body["error"]["details"]) == (422, [{"field": "granularity", "issue": "must be minute, hour or day"}])
