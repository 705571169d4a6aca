"""API keys through a running gateway: every auth method, scope, resource, role, expiry and revocation."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.accounts.actors import Actor
from tests.conftest import STORE_BACKEND, FakeClock, proxy_url, read_json, upstream_headers

ADMIN = Actor("test")
DAY = 86400.0


def routes(upstream: str, sandbox: str | None = None) -> list[dict[str, Any]]:
    api: dict[str, Any] = {"name": "visitors", "path": "/api/v1/visitors", "upstream": upstream}
    if sandbox:
        api["sandbox_upstream"] = sandbox
    return [
        api,
        {"name": "keyonly", "path": "/keyonly", "upstream": upstream, "auth": ["api_key_header"]},
        {"name": "location", "path": "/v1/locations/{location}", "upstream": upstream},
    ]


async def tenant_and_key(gw: Any, **key: Any) -> tuple[Any, str]:
    accounts = gw.accounts
    if await accounts.store.get_tenant("acme") is None:
        await accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    body = {"tenant_id": "acme", "name": "server key", "scope": "read_write", **key}
    return await accounts.create_key(body, ADMIN)


async def call(https: Any, gw: Any, path: str, method: str = "GET", **headers: str) -> tuple[int, Any, Any]:
    async with https.request(method, proxy_url(gw, path), headers=headers) as resp:
        return resp.status, await read_json(resp), resp.headers


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


@pytest.fixture
async def gw(start_gateway, upstream):
    url, _ = upstream
    return await start_gateway(routes=routes(url))


async def test_every_auth_method_passes_with_identity_headers(gw, upstream, https) -> None:
    key, secret = await tenant_and_key(gw)
    cases = [
        ({"X-API-Key": secret}, "api_key"),
        ({"Authorization": f"Bearer {secret}"}, "api_key"),
        ({"Authorization": basic(key.id, secret)}, "basic"),
    ]
    for headers, method in cases:
        status, body, resp_headers = await call(https, gw, "/api/v1/visitors/1", **headers)
        assert status == 200, body
        seen = upstream_headers(body)
        assert seen["x-gateway-tenant"] == "acme"
        assert seen["x-gateway-key-id"] == key.id
        assert seen["x-gateway-key-name"] == "server key"
        assert seen["x-gateway-scope"] == "read_write"
        assert seen["x-gateway-environment"] == "live"
        assert seen["x-gateway-auth-method"] == method
        assert "x-gateway-user" not in seen
        assert "authorization" not in seen and "x-api-key" not in seen
        assert resp_headers["X-RateLimit-Limit"] == "100"


@pytest.mark.parametrize(
    "headers, status, code",
    [
        ({}, 401, "MISSING_CREDENTIALS"),
        ({"Authorization": "Digest abc"}, 401, "MISSING_CREDENTIALS"),
        ({"X-API-Key": ""}, 401, "INVALID_CREDENTIALS"),
        ({"X-API-Key": "gw_live_" + "a" * 2000}, 401, "INVALID_CREDENTIALS"),
        ({"X-API-Key": "gw_live_notachecksummedkey"}, 401, "INVALID_CREDENTIALS"),
        ({"Authorization": "Bearer "}, 401, "INVALID_CREDENTIALS"),
        ({"Authorization": "Basic !!!notbase64"}, 401, "INVALID_CREDENTIALS"),
        ({"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}, 401, "INVALID_CREDENTIALS"),
    ],
)
async def test_bad_credentials_get_contract_errors(gw, upstream, https, headers, status, code) -> None:
    _, state = upstream
    got, body, resp_headers = await call(https, gw, "/api/v1/visitors", **headers)
    assert (got, body["error"]["code"]) == (status, code)
    assert resp_headers["WWW-Authenticate"] == "Bearer"
    assert state.hits == 0


async def test_valid_checksum_unknown_key_and_wrong_basic_id(gw, upstream, https) -> None:
    from gateway.credentials.keyformat import generate_key

    key, secret = await tenant_and_key(gw)
    unknown = generate_key("gw", "live")
    for headers in ({"X-API-Key": unknown}, {"Authorization": basic("key_other", secret)}):
        status, body, _ = await call(https, gw, "/api/v1/visitors", **headers)
        assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS")
    assert upstream[1].hits == 0


async def test_two_credentials_at_once_is_400(gw, https) -> None:
    _, secret = await tenant_and_key(gw)
    status, body, _ = await call(
        https, gw, "/api/v1/visitors", **{"X-API-Key": secret, "Authorization": f"Bearer {secret}"}
    )
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")


async def test_kind_not_accepted_by_route_counts_as_missing(gw, https) -> None:
    _, secret = await tenant_and_key(gw)
    status, body, _ = await call(https, gw, "/keyonly", Authorization=f"Bearer {secret}")
    assert (status, body["error"]["code"]) == (401, "MISSING_CREDENTIALS")
    status, _, _ = await call(https, gw, "/keyonly", **{"X-API-Key": secret})
    assert status == 200


async def test_read_only_scope(gw, https) -> None:
    _, secret = await tenant_and_key(gw, scope="read_only")
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    status, body, _ = await call(https, gw, "/api/v1/visitors", "POST", **{"X-API-Key": secret})
    assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")


async def test_custom_scope_permissions(gw, https) -> None:
    _, secret = await tenant_and_key(
        gw, scope="custom", permissions=[{"methods": ["GET"], "path": "/api/v1/visitors/public/*"}]
    )
    h = {"X-API-Key": secret}
    assert (await call(https, gw, "/api/v1/visitors/public/x", **h))[0] == 200
    assert (await call(https, gw, "/api/v1/visitors/public", **h))[0] == 200
    for method, path in (("GET", "/api/v1/visitors/other"), ("POST", "/api/v1/visitors/public/x"),
                         ("GET", "/api/v1/visitors/publicity")):
        status, body, _ = await call(https, gw, path, method, **h)
        assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE"), path


async def test_resource_limits(gw, upstream, https) -> None:
    _, secret = await tenant_and_key(gw, resources={"location": ["loc_001"]})
    h = {"X-API-Key": secret}
    assert (await call(https, gw, "/v1/locations/loc_001", **h))[0] == 200
    status, body, _ = await call(https, gw, "/v1/locations/loc_002", **h)
    assert (status, body["error"]["code"]) == (403, "RESOURCE_FORBIDDEN")
    assert upstream[1].hits == 1


async def test_owner_role_downgrade_and_disable_take_effect_at_once(gw, https) -> None:
    await tenant_and_key(gw)
    user = await gw.accounts.create_user("acme", {"name": "Ann", "role": "member"}, ADMIN)
    _, secret = await tenant_and_key(gw, user_id=user.id)
    h = {"X-API-Key": secret}
    status, body, _ = await call(https, gw, "/api/v1/visitors", "POST", **h)
    assert status == 200 and upstream_headers(body)["x-gateway-user"] == user.id
    await gw.accounts.update_user(user.id, {"role": "viewer"}, ADMIN)
    status, body, _ = await call(https, gw, "/api/v1/visitors", "POST", **h)
    assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
    assert (await call(https, gw, "/api/v1/visitors", **h))[0] == 200
    await gw.accounts.update_user(user.id, {"disabled": True}, ADMIN)
    status, body, _ = await call(https, gw, "/api/v1/visitors", **h)
    assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")


async def test_disabled_tenant_is_refused_at_once(gw, https) -> None:
    _, secret = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    await gw.accounts.update_tenant("acme", {"disabled": True}, ADMIN)
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert (status, body["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")


async def test_expiry_with_injected_clock(start_gateway, upstream, https) -> None:
    clock = FakeClock()
    gw = await start_gateway(clock=clock, routes=routes(upstream[0]))
    _, secret = await tenant_and_key(gw, validity_days=10)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    clock.advance(10 * DAY - 1)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    clock.advance(2)
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert (status, body["error"]["code"]) == (401, "EXPIRED_CREDENTIALS")


async def test_expiry_is_written_to_the_audit_trail_once(start_gateway, upstream) -> None:
    clock = FakeClock()
    gw = await start_gateway(clock=clock, routes=routes(upstream[0]))
    key, _ = await tenant_and_key(gw, validity_days=10)
    revoked, _ = await tenant_and_key(gw, validity_days=10, name="revoked")
    await gw.accounts.revoke_key(revoked.id, ADMIN)
    assert await gw.accounts.note_expired() == 0
    clock.advance(10 * DAY + 1)
    assert await gw.accounts.note_expired() == 1
    assert await gw.accounts.note_expired() == 0  # noted once, not on every look
    await gw.recorder.audit_buffer.flush()
    entries = await gw.recorder.store.list_audit(after=0, limit=100)
    expired = [e for e in entries if e.action == "key.expired"]
    assert [(e.target_id, e.actor, e.tenant_id, e.key_name) for e in expired] == [(key.id, "system", "acme", key.name)]


async def test_revoke_stops_a_cached_key_at_once(gw, https) -> None:
    key, secret = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 200
    await gw.accounts.revoke_key(key.id, ADMIN)
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")


async def test_rotate_old_fails_new_works(gw, https) -> None:
    key, old_secret = await tenant_and_key(gw, scope="read_only")
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": old_secret}))[0] == 200
    new, new_secret = await gw.accounts.rotate_key(key.id, ADMIN)
    assert new.id != key.id and new.scope == "read_only" and new.name == key.name
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": old_secret})
    assert (status, body["error"]["code"]) == (401, "REVOKED_CREDENTIALS")
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": new_secret})
    assert status == 200 and upstream_headers(body)["x-gateway-key-id"] == new.id


async def test_test_keys_go_to_the_sandbox_upstream(start_gateway, upstream, aiohttp_server, https) -> None:
    from tests.conftest import UpstreamState, upstream_app

    sandbox_state = UpstreamState()
    sandbox = await aiohttp_server(upstream_app(sandbox_state))
    gw = await start_gateway(routes=routes(upstream[0], f"http://127.0.0.1:{sandbox.port}"))
    _, live = await tenant_and_key(gw)
    _, test = await tenant_and_key(gw, environment="test")
    assert test.startswith("gw_test_")
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": test})
    assert status == 200 and upstream_headers(body)["x-gateway-environment"] == "test"
    assert sandbox_state.hits == 1 and upstream[1].hits == 0
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": live}))[0] == 200
    assert sandbox_state.hits == 1 and upstream[1].hits == 1


async def test_test_keys_never_reach_a_production_upstream_unless_the_route_allows_it(
    start_gateway, upstream, https
) -> None:
    url, state = upstream
    rs = routes(url)
    rs.append({"name": "sandboxed_by_choice", "path": "/api/v1/open-to-tests", "upstream": url, "test_keys": "allow"})
    gw = await start_gateway(routes=rs)
    _, live = await tenant_and_key(gw)
    _, test = await tenant_and_key(gw, environment="test", rate_limit_per_minute=5)
    for path in ("/api/v1/visitors", "/keyonly", "/v1/locations/loc_1"):  # no sandbox_upstream: refused
        status, body, headers = await call(https, gw, path, **{"X-API-Key": test})
        assert (status, body["error"]["code"]) == (403, "SANDBOX_UNAVAILABLE"), path
        assert "X-RateLimit-Remaining" not in headers  # refused before counting: no quota spent
    assert state.hits == 0
    status, body, headers = await call(https, gw, "/api/v1/open-to-tests", **{"X-API-Key": test})
    assert status == 200 and upstream_headers(body)["x-gateway-environment"] == "test"
    assert headers["X-RateLimit-Remaining"] == "4"  # the three refusals above spent nothing
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": live}))[0] == 200
    assert state.hits == 2


async def test_spoofed_identity_headers_are_replaced(gw, https) -> None:
    _, secret = await tenant_and_key(gw)
    status, body, _ = await call(
        https, gw, "/api/v1/visitors",
        **{"X-API-Key": secret, "X-Gateway-Tenant": "evil", "X-Gateway-User": "root", "X_Gateway_Scope": "admin"},
    )
    assert status == 200
    pairs = [(k.lower(), v) for k, v in body["headers"]]
    assert [v for k, v in pairs if k == "x-gateway-tenant"] == ["acme"]
    assert not [k for k, _ in pairs if k in ("x-gateway-user", "x_gateway_scope")]


async def test_cached_keys_survive_a_store_outage_new_ones_get_503(start_gateway, upstream, https) -> None:
    # the cache outlives any pause of a loaded machine (the default 5 s could run out mid-test)
    gw = await start_gateway(routes=routes(upstream[0]), store={"cache_ttl": 3600})
    _, cached = await tenant_and_key(gw)
    _, uncached = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": cached}))[0] == 200
    await gw.store.close()
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": cached}))[0] == 200
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": uncached})
    assert (status, body["error"]["code"]) == (503, "STORE_UNAVAILABLE")


async def test_secret_never_in_database_file_or_logs(gw, https, caplog, tmp_path: Path) -> None:
    if STORE_BACKEND != "sqlite":
        pytest.skip("reads the SQLite file; the PostgreSQL store keeps the same columns")
    caplog.set_level(logging.DEBUG)
    key, secret = await tenant_and_key(gw)
    await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret})
    await call(https, gw, "/api/v1/visitors", Authorization=basic(key.id, secret))
    await gw.last_used.flush()
    db_files = list((tmp_path / "data").glob("gateway.db*"))
    assert db_files
    for path in db_files:
        assert secret.encode() not in path.read_bytes()
    assert secret not in caplog.text
    stored = await gw.store.get_key(key.id)
    assert stored.last_used_at is not None
