"""The admin API over real HTTP: every endpoint, every rule, the audit trail and the call log."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_TOKEN, FakeClock, admin_url, proxy_url, read_json

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Admin:
    def __init__(self, gw: Any, session: aiohttp.ClientSession) -> None:
        self.gw = gw
        self.session = session

    async def __call__(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                       headers: dict[str, str] | None = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": {**AUTH, **(headers or {})}}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, admin_url(self.gw, path), **kwargs) as resp:
            return resp.status, await read_json(resp)


@pytest.fixture
async def admin(start_gateway, upstream):
    gw = await start_gateway(
        routes=[{"name": "api", "path": "/api", "upstream": upstream[0]}],
    )
    async with aiohttp.ClientSession() as session:
        yield Admin(gw, session)


async def test_admin_needs_the_token(admin) -> None:
    async with aiohttp.ClientSession() as plain:
        async with plain.get(admin_url(admin.gw, "/admin/version")) as resp:
            assert resp.status == 401
            assert (await read_json(resp))["error"]["code"] == "MISSING_CREDENTIALS"
        async with plain.get(admin_url(admin.gw, "/admin/version"), headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
            assert (await read_json(resp))["error"]["code"] == "INVALID_CREDENTIALS"
    status, body = await admin("GET", "/admin/version")
    assert status == 200 and body["version"]


async def test_admin_is_not_reachable_on_the_proxy_listener(admin, https) -> None:
    async with https.get(proxy_url(admin.gw, "/admin/version"), headers=AUTH) as resp:
        assert resp.status == 404
        assert (await read_json(resp))["error"]["code"] == "ROUTE_NOT_FOUND"


async def test_tenants_users_and_keys(admin, https) -> None:
    status, tenant = await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme <b>Inc</b>", "plan": "starter"})
    assert status == 201
    assert tenant["requests_per_minute"] == 100 and tenant["active_keys"] == 0
    assert (await admin("POST", "/admin/tenants", {"id": "acme", "name": "x", "plan": "starter"}))[0] == 409
    status, body = await admin("POST", "/admin/tenants", {"name": "", "plan": "gold", "extra": 1})
    assert status == 422
    assert {d["field"] for d in body["error"]["details"]} == {"name", "plan", "extra"}

    status, user = await admin("POST", "/admin/tenants/acme/users", {"name": "Ann", "email": "ann@example.com", "role": "member"})
    assert status == 201
    assert set(user) >= {"id", "tenant_id", "name", "email", "role", "disabled"}
    status, user = await admin("PATCH", f"/admin/users/{user['id']}", {"role": "viewer"})
    assert status == 200 and user["role"] == "viewer"

    status, key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "backend", "scope": "read_write"})
    assert status == 201
    secret = key.pop("key")
    assert secret.startswith("gw_live_")
    assert key["masked"].startswith("gw_live_") and key["last4"] == secret[-4:]
    assert key["expires_in_days"] == 90 and key["status"] == "active" and key["expiring_soon"] is False
    async with https.get(proxy_url(admin.gw, "/api/x"), headers={"X-API-Key": secret}) as resp:
        assert resp.status == 200

    status, got = await admin("GET", f"/admin/keys/{key['id']}")
    assert status == 200 and "key" not in got and secret not in str(got)
    status, tenant = await admin("GET", "/admin/tenants/acme")
    assert tenant["active_keys"] == 1 and tenant["users"][0]["name"] == "Ann"

    status, rotated = await admin("POST", f"/admin/keys/{key['id']}/rotate")
    assert status == 201 and rotated["key"] != secret and rotated["id"] != key["id"]
    async with https.get(proxy_url(admin.gw, "/api/x"), headers={"X-API-Key": secret}) as resp:
        assert resp.status == 401
    async with https.get(proxy_url(admin.gw, "/api/x"), headers={"X-API-Key": rotated["key"]}) as resp:
        assert resp.status == 200
    status, revoked = await admin("POST", f"/admin/keys/{rotated['id']}/revoke")
    assert status == 200 and revoked["status"] == "revoked"
    async with https.get(proxy_url(admin.gw, "/api/x"), headers={"X-API-Key": rotated["key"]}) as resp:
        assert (await read_json(resp))["error"]["code"] == "REVOKED_CREDENTIALS"

    status, tenant = await admin("PATCH", "/admin/tenants/acme", {"plan": "enterprise", "name": "Acme"})
    assert status == 200 and tenant["requests_per_minute"] == 2000


async def test_key_rules(admin) -> None:
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    bad = {"tenant_id": "acme", "name": "<img src=x onerror=alert(1)>", "scope": "custom", "validity_days": 5}
    status, body = await admin("POST", "/admin/keys", bad)
    assert status == 422
    fields = {d["field"] for d in body["error"]["details"]}
    assert {"name", "validity_days", "permissions"} <= fields
    status, body = await admin("POST", "/admin/keys",
                               {"tenant_id": "acme", "name": "x", "scope": "read_write", "validity_days": "10"})
    assert status == 422
    status, key = await admin("POST", "/admin/keys",
                              {"tenant_id": "acme", "name": "forever", "scope": "read_only", "validity_days": None})
    assert status == 201 and key["expires_at"] is None and key["expires_in_days"] is None
    for i in range(3):
        made = await admin("POST", "/admin/keys",
                           {"tenant_id": "acme", "name": f"k{i}", "scope": "read_only", "validity_days": 10})
        assert made[0] == 201
    status, body = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "fifth", "scope": "read_only"})
    assert status == 422 and body["error"]["details"][0]["field"] == "tenant_id"
    status, body = await admin("GET", "/admin/keys?sort=expires_at&per_page=2")
    assert status == 200 and body["meta"] == {"total": 4, "page": 1, "per_page": 2, "total_pages": 2}
    assert [k["expiring_soon"] for k in body["data"]] == [True, True]
    status, body = await admin("GET", "/admin/keys?sort=-expires_at&status=active&tenant_id=acme")
    assert body["data"][0]["name"] in ("forever", "k0", "k1", "k2")


@pytest.mark.parametrize(
    "method, path, body, raw, status, code",
    [
        ("POST", "/admin/tenants", None, b"{nope", 400, "BAD_REQUEST"),
        ("POST", "/admin/tenants", None, b"[" * 5000, 400, "BAD_REQUEST"),  # deeper than the parser recurses
        ("GET", "/admin/calls?key_id=%00", None, None, 422, "VALIDATION_ERROR"),  # PostgreSQL cannot hold a NUL: not a 503
        ("GET", "/admin/keys?tenant_id=%00", None, None, 422, "VALIDATION_ERROR"),
        ("GET", "/admin/audit?action=%00", None, None, 422, "VALIDATION_ERROR"),
        ("GET", "/admin/keys/key%00", None, None, 404, "NOT_FOUND"),
        ("POST", "/admin/tenants", [1, 2], None, 422, "VALIDATION_ERROR"),
        ("POST", "/admin/tenants", None, b"x" * 70000, 413, "PAYLOAD_TOO_LARGE"),
        ("GET", "/admin/tenants?page=0", None, None, 422, "VALIDATION_ERROR"),
        ("GET", "/admin/tenants?per_page=1000", None, None, 422, "VALIDATION_ERROR"),
        ("GET", "/admin/keys?sort=secret_hash", None, None, 422, "VALIDATION_ERROR"),
        ("GET", "/admin/keys?status=weird", None, None, 422, "VALIDATION_ERROR"),
        ("GET", "/admin/audit?after=%%%garbage", None, None, 400, "BAD_REQUEST"),
        ("GET", "/admin/tenants/nope", None, None, 404, "NOT_FOUND"),
        ("GET", "/admin/keys/key_..%2F..%2Fetc", None, None, 404, "NOT_FOUND"),
        ("PATCH", "/admin/users/usr_missing", {"role": "viewer"}, None, 404, "NOT_FOUND"),
        ("DELETE", "/admin/tenants", None, None, 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_bad_admin_input(admin, method, path, body, raw, status, code) -> None:
    got, payload = await admin(method, path, body, raw=raw)
    assert (got, payload["error"]["code"]) == (status, code)


async def test_audit_trail_and_cursor(admin) -> None:
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    _, key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "backend", "scope": "read_write"})
    await admin("POST", f"/admin/keys/{key['id']}/revoke")
    status, page = await admin("GET", "/admin/audit?limit=2")
    assert status == 200
    assert [e["action"] for e in page["data"]] == ["tenant.created", "key.created"]
    assert page["data"][1]["key_name"] == "backend" and page["data"][1]["actor"] == "admin"
    assert page["data"][1]["source_ip"] == "127.0.0.1"
    status, rest = await admin("GET", f"/admin/audit?after={page['next_cursor']}")
    assert [e["action"] for e in rest["data"]] == ["key.revoked"]
    status, empty = await admin("GET", f"/admin/audit?after={rest['next_cursor']}")
    assert empty["data"] == [] and empty["next_cursor"] == rest["next_cursor"]


async def test_audit_cursor_never_skips_or_repeats_under_concurrent_writes(admin) -> None:
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    user_ids = []
    for i in range(3):
        _, user = await admin("POST", "/admin/tenants/acme/users", {"name": f"u{i}", "role": "member"})
        user_ids.append(user["id"])

    async def writer() -> None:
        for n in range(60):
            await admin("PATCH", f"/admin/users/{user_ids[n % 3]}", {"role": "viewer" if n % 2 else "member"})

    seen: list[int] = []
    cursor = ""
    task = asyncio.ensure_future(writer())
    while not task.done():
        _, page = await admin("GET", f"/admin/audit?limit=7&after={cursor}")
        seen.extend(e["id"] for e in page["data"])
        cursor = page["next_cursor"]
    await task
    while True:
        _, page = await admin("GET", f"/admin/audit?limit=7&after={cursor}")
        if not page["data"]:
            break
        seen.extend(e["id"] for e in page["data"])
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 1 + 3 + 60
    assert seen == sorted(seen)


async def test_call_log_rows_for_proxied_requests(admin, https) -> None:
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    _, key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "backend", "scope": "read_only"})
    for method in ("GET", "POST"):
        async with https.request(method, proxy_url(admin.gw, "/api/v?x=1"), headers={"X-API-Key": key["key"]}) as resp:
            await resp.read()
    status, page = await admin("GET", "/admin/calls")
    assert status == 200
    rows = page["data"]
    assert [(r["method"], r["status"], r["path"]) for r in rows] == [("GET", 200, "/api/v"), ("POST", 403, "/api/v")]
    assert rows[0]["key_id"] == key["id"] and rows[0]["key_name"] == "backend" and rows[0]["tenant_id"] == "acme"
    assert rows[0]["upstream_latency_ms"] is not None and rows[0]["latency_ms"] >= rows[0]["upstream_latency_ms"]
    status, only = await admin("GET", "/admin/calls?status=403")
    assert [r["status"] for r in only["data"]] == [403]
    status, newest = await admin("GET", "/admin/calls?order=desc&limit=1")
    assert newest["data"][0]["method"] == "POST"
    status, older = await admin("GET", f"/admin/calls?order=desc&limit=1&after={newest['next_cursor']}")
    assert older["data"][0]["method"] == "GET"


async def test_call_log_names_the_key_of_a_refused_credential_the_address_and_unrouted_refusals(
    start_gateway, upstream, https
) -> None:
    clock = FakeClock(time.time())
    gw = await start_gateway(clock=clock, routes=[{"name": "api", "path": "/api", "upstream": upstream[0]}],
                             keys={"min_validity_days": 1})
    async with aiohttp.ClientSession() as session:
        admin = Admin(gw, session)
        await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
        _, revoked = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "revoked", "scope": "read_only"})
        _, expiring = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "expiring", "scope": "read_only",
                                                          "validity_days": 1})
        _, minting = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": "minting", "scope": "read_only"})

        async def get(path: str, **headers: str) -> int:
            async with https.get(proxy_url(gw, path), headers=headers) as resp:
                await resp.read()
                return resp.status

        async with https.post(proxy_url(gw, "/api/v1/auth/token"), json={"api_key": minting["key"]}) as resp:
            token = (await read_json(resp))["token"]
        assert await get("/api/x", **{"X-API-Key": revoked["key"]}) == 200
        await admin("POST", f"/admin/keys/{revoked['id']}/revoke")
        await admin("POST", f"/admin/keys/{minting['id']}/revoke")
        statuses = [
            await get("/api/x", **{"X-API-Key": revoked["key"]}),
            await get("/api/x", Authorization=f"Bearer {token}"),
        ]
        clock.advance(86400 + 60)  # past the expiring key's day
        statuses += [
            await get("/api/x", **{"X-API-Key": expiring["key"]}),
            await get("/api/x", **{"X-API-Key": revoked["key"][:-1] + "0"}),  # its checksum broken: no key
            await get("/nowhere/at/all"),
        ]
        assert statuses == [401, 401, 401, 401, 404]
        status, page = await admin("GET", "/admin/calls")
    rows = [(r["path"], r["status"], r["key_id"], r["error"], r["route"]) for r in page["data"]]
    assert rows == [
        ("/api/x", 200, revoked["id"], None, "api"),
        ("/api/x", 401, revoked["id"], "REVOKED_CREDENTIALS", "api"),
        ("/api/x", 401, minting["id"], "REVOKED_CREDENTIALS", "api"),  # a token of a revoked key
        ("/api/x", 401, expiring["id"], "EXPIRED_CREDENTIALS", "api"),
        ("/api/x", 401, None, "INVALID_CREDENTIALS", "api"),
        ("/nowhere/at/all", 404, None, "ROUTE_NOT_FOUND", None),
    ]
    assert {r["client_ip"] for r in page["data"]} == {"127.0.0.1"}
    assert [r["tenant_id"] for r in page["data"]][:4] == ["acme"] * 4


MALFORMED = {
    "not http": b"HELLO\r\n\r\n",
    "unknown version": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    "oversized header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "length and chunked": b"POST /admin/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_http_on_the_admin_listener_gets_the_json_envelope(admin, caplog, name) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.gw.admin_port)
    try:
        writer.write(MALFORMED[name])
        answer = await asyncio.wait_for(reader.read(), 10)  # then the connection closes
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert lines[0].split()[1] == "400", lines[0]
    assert headers["content-type"].startswith("application/json") and headers["x-request-id"]
    assert headers["server"] == "gateway"
    assert json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert not [r for r in caplog.records if r.levelno >= 30]  # no traceback, no error log per garbage request
    status, _ = await admin("GET", "/healthz")  # the listener goes on
    assert status == 200


async def test_audit_filters_by_tenant_and_action_and_calls_by_tenant(admin, https) -> None:
    for tenant in ("acme", "globex"):
        await admin("POST", "/admin/tenants", {"id": tenant, "name": tenant, "plan": "starter"})
    keys = {}
    for tenant in ("acme", "globex"):
        _, keys[tenant] = await admin("POST", "/admin/keys", {"tenant_id": tenant, "name": "k", "scope": "read_only"})
    await admin("POST", f"/admin/keys/{keys['globex']['id']}/revoke")
    _, page = await admin("GET", "/admin/audit?tenant_id=globex")
    assert [e["action"] for e in page["data"]] == ["tenant.created", "key.created", "key.revoked"]
    _, page = await admin("GET", "/admin/audit?action=key.created")
    assert [e["tenant_id"] for e in page["data"]] == ["acme", "globex"]
    _, page = await admin("GET", "/admin/audit?action=key.created&tenant_id=acme&order=desc")
    assert [(e["tenant_id"], e["action"]) for e in page["data"]] == [("acme", "key.created")]
    _, page = await admin("GET", "/admin/audit?action=key.rotated")
    assert page["data"] == []

    for tenant in ("acme", "globex", "acme"):
        async with https.get(proxy_url(admin.gw, "/api/v"), headers={"X-API-Key": keys[tenant]["key"]}) as resp:
            await resp.read()
    _, page = await admin("GET", "/admin/calls?tenant_id=acme")
    assert [(r["tenant_id"], r["status"]) for r in page["data"]] == [("acme", 200), ("acme", 200)]
    _, page = await admin("GET", "/admin/calls?tenant_id=globex&status=401")
    assert [(r["tenant_id"], r["status"]) for r in page["data"]] == [("globex", 401)]


@pytest.mark.parametrize("path", [
    "/admin/audit?tenant=acme", "/admin/calls?key=k", "/admin/keys?tenant=acme", "/admin/tenants?pages=2",
    "/admin/webhooks?tenant=acme", "/admin/usage?tenant_id=acme&granularity=hour&bucket=1",
    "/admin/version?verbose=1", "/admin/plans?page=1", "/admin/tenants/acme?users=0", "/admin/keys?from_=1",
])
async def test_an_unknown_query_parameter_is_a_422_naming_it(admin, path) -> None:
    await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
    status, body = await admin("GET", path)
    assert status == 422, body
    unknown = path.rsplit("&", 1)[-1].split("?")[-1].split("=")[0]
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert [d["field"] for d in body["error"]["details"]] == [unknown]
    assert "unknown parameter" in body["error"]["details"][0]["issue"]


async def test_writes_refuse_a_query_too_and_change_nothing(admin) -> None:
    status, body = await admin("POST", "/admin/tenants?dry_run=1", {"id": "acme", "name": "Acme", "plan": "starter"})
    assert (status, body["error"]["details"][0]["field"]) == (422, "dry_run")
    assert (await admin("GET", "/admin/tenants/acme"))[0] == 404


async def test_plans_are_listed_from_the_configuration(admin) -> None:
    status, body = await admin("GET", "/admin/plans")
    assert status == 200
    assert body["data"] == [{"name": "starter", "requests_per_minute": 100},
                            {"name": "professional", "requests_per_minute": 500},
                            {"name": "enterprise", "requests_per_minute": 2000}]
    assert body["meta"]["total"] == 3


async def test_a_key_made_with_an_expiry_date_ends_then(start_gateway, upstream, https) -> None:
    clock = FakeClock(1_800_000_000.0)  # 2027-01-15T08:00:00Z
    gw = await start_gateway(clock=clock, routes=[{"name": "api", "path": "/api", "upstream": upstream[0]}])
    async with aiohttp.ClientSession() as session:
        admin = Admin(gw, session)
        await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
        base = {"tenant_id": "acme", "name": "dated", "scope": "read_only"}
        status, key = await admin("POST", "/admin/keys", {**base, "expires_at": "2027-01-20T09:00:00+01:00"})
        assert status == 201, key
        assert (key["expires_at"], key["expires_in_days"], key["status"]) == ("2027-01-20T08:00:00Z", 5, "active")
        _, shown = await admin("GET", f"/admin/keys/{key['id']}")
        assert shown["expires_at"] == "2027-01-20T08:00:00Z"
        for body, issue in (
            ({**base, "expires_at": "2027-01-20T08:00:00Z", "validity_days": 30}, "not both"),
            ({**base, "expires_at": "2027-01-15T07:59:59Z"}, "in the future"),
            ({**base, "expires_at": "2028-01-16T08:00:00Z"}, "max_validity_days (365)"),
            ({**base, "expires_at": None}, "validity_days: null"),
            ({**base, "expires_at": "2027-01-20T08:00:00"}, "with a zone"),
            ({**base, "expires_at": "2027-01-20"}, "with a zone"),
            ({**base, "expires_at": 1_800_500_000}, "with a zone"),
        ):
            status, err = await admin("POST", "/admin/keys", body)
            assert status == 422, body
            assert [d["field"] for d in err["error"]["details"]] == ["expires_at"]
            assert issue in err["error"]["details"][0]["issue"], err
        clock.advance(5 * 86400 - 1)
        async with https.get(proxy_url(gw, "/api/x"), headers={"X-API-Key": key["key"]}) as resp:
            assert resp.status == 200
        clock.advance(1)
        async with https.get(proxy_url(gw, "/api/x"), headers={"X-API-Key": key["key"]}) as resp:
            assert resp.status == 401 and (await read_json(resp))["error"]["code"] == "EXPIRED_CREDENTIALS"
        _, shown = await admin("GET", f"/admin/keys/{key['id']}")
        assert shown["status"] == "expired"


async def test_names_of_spaces_alone_are_refused_and_names_are_stored_trimmed(admin) -> None:
    for path, body in (("/admin/tenants", {"id": "acme", "plan": "starter"}),):
        status, err = await admin("POST", path, {**body, "name": "   "})
        assert (status, [d["field"] for d in err["error"]["details"]]) == (422, ["name"])
        assert "not only spaces" in err["error"]["details"][0]["issue"]
    status, tenant = await admin("POST", "/admin/tenants", {"id": "acme", "name": "  Acme  Corp ", "plan": "starter"})
    assert status == 201 and tenant["name"] == "Acme  Corp"
    assert (await admin("PATCH", "/admin/tenants/acme", {"name": " "}))[0] == 422
    assert (await admin("PATCH", "/admin/tenants/acme", {"name": " Acme "}))[1]["name"] == "Acme"
    assert (await admin("POST", "/admin/tenants/acme/users", {"name": "  ", "role": "member"}))[0] == 422
    status, user = await admin("POST", "/admin/tenants/acme/users", {"name": " Ann ", "role": "member"})
    assert status == 201 and user["name"] == "Ann"
    assert (await admin("PATCH", f"/admin/users/{user['id']}", {"name": "    "}))[0] == 422
    assert (await admin("PATCH", f"/admin/users/{user['id']}", {"name": "Ann B "}))[1]["name"] == "Ann B"
    status, err = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": " ", "scope": "read_only"})
    assert (status, [d["field"] for d in err["error"]["details"]]) == (422, ["name"])
    status, key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": " backend ", "scope": "read_only"})
    assert status == 201 and key["name"] == "backend"
    _, shown = await admin("GET", f"/admin/keys/{key['id']}")
    assert shown["name"] == "backend"
