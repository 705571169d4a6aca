"""The caller's own endpoints (`/gateway/v1/version`, `/gateway/v1/me`) and the `Sunset` header on
answers to keys that expire soon (contract section 10), through a running gateway."""

from __future__ import annotations

import base64
import email.utils
import time
from typing import Any

import jsonschema
import pytest
from aiohttp import web

from gateway import __version__
from gateway.admin.openapi import document
from tests.access.test_keys_e2e import ADMIN, DAY, call, routes, tenant_and_key
from tests.conftest import FakeClock, proxy_url, read_json

ME, VERSION = "/gateway/v1/me", "/gateway/v1/version"


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def gw(start_gateway, upstream, clock):
    return await start_gateway(clock=clock, routes=routes(upstream[0]), self_api={"api_version": "2026-12-01"})


async def token_of(https: Any, gw: Any, secret: str) -> str:
    async with https.post(proxy_url(gw, gw.cfg.tokens.path), json={"api_key": secret}) as resp:
        return str((await read_json(resp))["token"])


async def test_me_and_version_with_every_credential_kind(gw, https, upstream) -> None:
    key, secret = await tenant_and_key(gw, scope="read_only", environment="test", rate_limit_per_minute=50)
    basic = "Basic " + base64.b64encode(f"{key.id}:{secret}".encode()).decode()
    token = await token_of(https, gw, secret)  # counted: 1
    hits = upstream[1].hits
    remaining = []
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}, {"Authorization": basic},
                    {"Authorization": f"Bearer {token}"}):
        status, body, seen = await call(https, gw, ME, **headers)
        assert status == 200, body
        assert body["tenant"] == {"id": "acme", "name": "Acme", "plan": "starter"}
        assert body["key"] == {"id": key.id, "name": "server key", "scope": "read_only", "environment": "test",
                               "expires_at": key.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "expiring_soon": False}
        assert body["limits"]["requests_per_minute"] == 50
        assert seen["X-RateLimit-Limit"] == "50" and seen["X-RateLimit-Remaining"] == str(body["limits"]["remaining"])
        assert seen["Cache-Control"] == "no-store" and "X-Request-Id" in seen and "Sunset" not in seen
        remaining.append(body["limits"]["remaining"])
    assert remaining == [48, 47, 46, 45]  # each counts, the token exchange too
    schemas = document(gw.cfg)["components"]["schemas"]
    jsonschema.validate(body, schemas["CallerMe"])  # as the admin API's OpenAPI document says
    status, body, _ = await call(https, gw, VERSION, **{"X-API-Key": secret})
    assert (status, body) == (200, {"gateway_version": __version__, "api_version": "2026-12-01"})
    jsonschema.validate(body, schemas["CallerVersion"])
    async with https.head(proxy_url(gw, ME), headers={"X-API-Key": secret}) as resp:
        assert resp.status == 200 and await resp.read() == b""
    assert upstream[1].hits == hits  # nothing reached the upstream


async def test_me_counts_against_the_keys_limit_shared_with_its_routes(gw, https) -> None:
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=3)
    for _ in range(2):
        assert (await call(https, gw, ME, **{"X-API-Key": secret}))[0] == 200
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    for path in (ME, VERSION, "/api/v1/visitors"):
        status, body, seen = await call(https, gw, path, **{"X-API-Key": secret})
        assert (status, body["error"]["code"]) == (429, "RATE_LIMITED"), path
        assert int(seen["Retry-After"]) >= 1 and seen["X-RateLimit-Remaining"] == "0"


async def test_the_usual_refusals(gw, https, clock) -> None:
    for path in (ME, VERSION):
        status, body, seen = await call(https, gw, path)
        assert (status, body["error"]["code"]) == (401, "MISSING_CREDENTIALS")
        assert seen["WWW-Authenticate"].startswith("Bearer")
        status, body, _ = await call(https, gw, path, **{"X-API-Key": "gw_live_nonsense"})
        assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS")
        status, body, seen = await call(https, gw, path, "POST")
        assert (status, body["error"]["code"], seen["Allow"]) == (405, "METHOD_NOT_ALLOWED", "GET, HEAD")
    revoked, revoked_secret = await tenant_and_key(gw, name="revoked")
    await gw.accounts.revoke_key(revoked.id, ADMIN)
    status, body, _ = await call(https, gw, ME, **{"X-API-Key": revoked_secret})
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")
    _, secret = await tenant_and_key(gw, validity_days=10)
    token = await token_of(https, gw, secret)
    await gw.accounts.update_tenant("acme", {"api_enabled": False}, ADMIN)
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {token}"}):
        status, body, _ = await call(https, gw, ME, **headers)
        assert (status, body["error"]["code"]) == (403, "API_ACCESS_DISABLED")
    await gw.accounts.update_tenant("acme", {"api_enabled": True, "disabled": True}, ADMIN)
    assert (await call(https, gw, VERSION, **{"X-API-Key": secret}))[0] == 403
    await gw.accounts.update_tenant("acme", {"disabled": False}, ADMIN)
    assert (await call(https, gw, VERSION, **{"X-API-Key": secret}))[0] == 200
    clock.advance(10 * DAY + 1)
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {token}"}):
        status, body, _ = await call(https, gw, ME, **headers)
        assert (status, body["error"]["code"]) == (401, "EXPIRED_CREDENTIALS")


async def test_a_custom_path_and_turned_off(start_gateway, upstream, https) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), self_api={"path": "/own"})
    _, secret = await tenant_and_key(gw)
    assert (await call(https, gw, "/own/version", **{"X-API-Key": secret}))[1]["api_version"] == "1"
    assert (await call(https, gw, ME, **{"X-API-Key": secret}))[1]["error"]["code"] == "ROUTE_NOT_FOUND"
    off = await start_gateway(routes=routes(upstream[0]), self_api={"enabled": False})
    _, secret = await tenant_and_key(off)
    assert (await call(https, off, ME, **{"X-API-Key": secret}))[1]["error"]["code"] == "ROUTE_NOT_FOUND"


# Sunset


def http_date(at: Any) -> str:
    return email.utils.formatdate(at.timestamp(), usegmt=True)


async def test_answers_to_a_key_that_expires_soon_carry_sunset(gw, https, clock) -> None:
    soon, soon_secret = await tenant_and_key(gw, validity_days=10, name="soon")
    later, later_secret = await tenant_and_key(gw, validity_days=90, name="later")
    never, never_secret = await tenant_and_key(gw, validity_days=None, name="never")
    token = await token_of(https, gw, soon_secret)
    for headers in ({"X-API-Key": soon_secret}, {"Authorization": f"Bearer {token}"}):
        status, seen, answer = await call(https, gw, "/api/v1/visitors", **headers)
        assert status == 200 and seen["method"] == "GET"  # through the real upstream
        assert answer.getall("Sunset") == [http_date(soon.expires_at)] and "Link" not in answer
    status, body, answer = await call(https, gw, ME, **{"X-API-Key": soon_secret})
    assert body["key"]["expiring_soon"] is True and answer["Sunset"] == http_date(soon.expires_at)
    status, body, answer = await call(https, gw, "/api/v1/visitors", "POST", **{"X-API-Key": soon_secret})
    assert status == 200 and answer["Sunset"] == http_date(soon.expires_at)
    for secret in (later_secret, never_secret):
        assert "Sunset" not in (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[2]
    # 20 days (keys.expiring_soon_days) before its expiry, the 90-day key joins in: no refill needed
    clock.advance(70 * DAY - 60)
    answer = (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": later_secret}))[2]
    assert "Sunset" not in answer
    clock.advance(120)
    answer = (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": later_secret}))[2]
    assert answer["Sunset"] == http_date(later.expires_at)
    assert (await call(https, gw, ME, **{"X-API-Key": later_secret}))[1]["key"]["expiring_soon"] is True
    assert "Sunset" not in (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": never_secret}))[2]
    assert never.expires_at is None


async def test_sunset_links_to_the_portal_and_keeps_the_upstreams_links(start_gateway, aiohttp_server, https) -> None:
    async def paged(request: web.Request) -> web.Response:
        return web.json_response({}, headers={"Link": '</items?page=2>; rel="next"', "Sunset": "Sat, 01 Jan 2000 00:00:00 GMT"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", paged)
    server = await aiohttp_server(app)
    gw = await start_gateway(routes=routes(f"http://127.0.0.1:{server.port}"),
                             portal={"enabled": True, "public_url": "https://portal.example.com/"})
    key, secret = await tenant_and_key(gw, validity_days=10)
    status, _, answer = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert status == 200
    assert sorted(answer.getall("Link")) == [
        '</items?page=2>; rel="next"', f'<https://portal.example.com/portal/#/keys?key={key.id}>; rel="sunset"']
    assert answer.getall("Sunset") == [http_date(key.expires_at)]  # the key's, not the upstream's
    _, later = await tenant_and_key(gw, validity_days=90, name="later")
    answer = (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": later}))[2]
    assert answer.getall("Link") == ['</items?page=2>; rel="next"'] and answer["Sunset"] == "Sat, 01 Jan 2000 00:00:00 GMT"
