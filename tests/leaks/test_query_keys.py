"""Keys where they leak, through a running gateway: in a query string (400 CREDENTIAL_IN_QUERY,
never forwarded nor logged) and over plain HTTP (403 as before); either way the key is marked
exposed before the answer leaves."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from gateway.accounts.actors import Actor
from gateway.credentials.keyformat import generate_key
from tests.conftest import ADMIN_TOKEN, admin_url, read_json

ADMIN = Actor("admin", "127.0.0.1")


def every_char_encoded(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


# Where in a query a key may sit; each is a leak.
PLACES = {
    "value": lambda k: f"api_key={k}",
    "whole query": lambda k: k,
    "parameter name": lambda k: f"{k}=1&page=2",
    "inside a value": lambda k: f"page=2&auth=Bearer%20{k}",
    "every character encoded": lambda k: "k=" + every_char_encoded(k),
    "encoded twice": lambda k: "k=" + quote(quote(k, safe=""), safe="").replace("_", "%255F"),
    "plus and separators": lambda k: f"a=1;b=2&c=x+{k}+y",
}


async def gateway_with_key(start_gateway: Any, upstream: Any, **overrides: Any) -> tuple[Any, Any, str]:
    url, _ = upstream
    gw = await start_gateway(routes=[{"name": "api", "path": "/api", "upstream": url}], **overrides)
    await gw.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    key, secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "server", "scope": "read_write"}, ADMIN)
    return gw, key, secret


async def get(https: aiohttp.ClientSession, gw: Any, target: str, **headers: str) -> tuple[int, bytes]:
    url = URL(f"https://127.0.0.1:{gw.proxy_port}{target}", encoded=True)  # sent as written, not re-encoded
    async with https.get(url, headers=headers) as resp:
        return resp.status, await resp.read()


async def call_rows(gw: Any) -> list[dict[str, Any]]:
    assert await gw.recorder.call_buffer.flush()
    async with aiohttp.ClientSession() as admin, admin.get(
            admin_url(gw, "/admin/calls?limit=100"), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        return (await read_json(resp))["data"]


def access_log(gw: Any, capsys: Any) -> str:
    gw.access_log.flush()  # lines leave in batches; a test reads them now
    return "\n".join(line for line in capsys.readouterr().err.splitlines() if '"logger":"gateway.access"' in line)


@pytest.mark.parametrize("place", list(PLACES))
async def test_a_key_in_the_query_is_refused_marked_and_never_passed_on(
        start_gateway, upstream, https, capsys, place: str) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream)
    query = PLACES[place](secret)
    status, body = await get(https, gw, f"/api/items?{query}")
    assert status == 400, body
    error = json.loads(body)["error"]
    assert error["code"] == "CREDENTIAL_IN_QUERY"
    assert secret not in body.decode() and query not in body.decode()
    assert upstream[1].hits == 0  # never forwarded
    got = await gw.accounts.key(key.id)
    assert got.exposure is not None and got.exposure["reason"] == "query_string"
    assert got.revoked_at is not None  # keys.on_exposure: revoke, the default
    rows = [r for r in await call_rows(gw) if r["error"] == "CREDENTIAL_IN_QUERY"]
    assert [(r["path"], r["status"]) for r in rows] == [("/api/items", 400)]
    assert secret not in json.dumps(rows)
    lines = access_log(gw, capsys)
    assert '"code":"CREDENTIAL_IN_QUERY"' in lines and '"path":"/api/items"' in lines
    assert secret not in lines and secret[:20] not in lines


# Where in a path a key may sit: forwarded and logged like a query, and read as one by a proxy
# that decodes `%3F` or an upstream that takes `;` parameters.
PATH_PLACES = {
    "a segment": lambda k: f"/api/items/{k}",
    "a path parameter": lambda k: f"/api/items;api_key={k}",
    "after an encoded ?": lambda k: f"/api/items%3Fapi_key={k}",
    "every character encoded": lambda k: "/api/items/" + every_char_encoded(k),
}


@pytest.mark.parametrize("place", list(PATH_PLACES))
async def test_a_key_in_the_path_is_refused_marked_and_never_passed_on_or_logged(
        start_gateway, upstream, https, capsys, place: str) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream)
    status, body = await get(https, gw, PATH_PLACES[place](secret), **{"X-API-Key": secret})
    assert status == 400 and json.loads(body)["error"]["code"] == "CREDENTIAL_IN_QUERY", body
    assert secret not in body.decode() and upstream[1].hits == 0
    got = await gw.accounts.key(key.id)
    assert got.exposure is not None and got.exposure["reason"] == "query_string"
    rows = [r for r in await call_rows(gw) if r["error"] == "CREDENTIAL_IN_QUERY"]
    assert [(r["path"], r["status"]) for r in rows] == [("", 400)] and secret not in json.dumps(rows)
    lines = access_log(gw, capsys)
    assert '"code":"CREDENTIAL_IN_QUERY"' in lines and secret not in lines and secret[:20] not in lines


async def test_next_to_a_header_key_the_query_key_still_stops_the_request(start_gateway, upstream, https) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream)
    other, other_secret = await gw.accounts.create_key(
        {"tenant_id": "acme", "name": "browser", "scope": "read_only"}, ADMIN)
    status, _ = await get(https, gw, f"/api/items?key={other_secret}", **{"X-API-Key": secret})
    assert status == 400 and upstream[1].hits == 0
    assert (await gw.accounts.key(other.id)).exposed_at is not None
    assert (await gw.accounts.key(key.id)).exposed_at is None  # the header's key did not leak
    status, _ = await get(https, gw, "/api/items?page=2", **{"X-API-Key": secret})
    assert status == 200 and upstream[1].last["query"] == "page=2"


async def test_near_misses_pass_and_unknown_keys_are_refused_without_a_lookup(start_gateway, upstream, https) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream)
    broken = secret[:-1] + ("A" if secret[-1] != "A" else "B")  # its checksum fails
    other_prefix = "xx" + secret[2:]
    for query in (f"q={broken}", f"q={other_prefix}", f"q={secret[:-2]}", "q=gw_live_", "gw_=1"):
        status, body = await get(https, gw, f"/api/items?{query}", **{"X-API-Key": secret})
        assert status == 200, (query, body)
    assert upstream[1].hits == 5
    assert (await gw.accounts.key(key.id)).exposed_at is None
    stranger = generate_key("gw", "test")  # well-formed, no such key: refused all the same
    status, body = await get(https, gw, f"/api/items?k={stranger}")
    assert status == 400 and json.loads(body)["error"]["code"] == "CREDENTIAL_IN_QUERY"


async def test_a_flood_with_one_leaked_key_records_one_exposure(start_gateway, upstream, https) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream, keys={"on_exposure": "flag"})
    statuses = await asyncio.gather(*(get(https, gw, f"/api/items?n={i}&key={secret}") for i in range(200)))
    assert {s for s, _ in statuses} == {400}
    assert await gw.recorder.audit_buffer.flush()
    entries = await gw.recorder.store.list_audit(after=None, limit=1000)
    assert [e.action for e in entries if e.target_id == key.id] == ["key.created", "key.exposed"]
    assert [(e.actor, e.source_ip) for e in entries if e.action == "key.exposed"] == [("system", "127.0.0.1")]
    got = await gw.accounts.key(key.id)
    assert got.revoked_at is None and got.status(gw.accounts.now()) == "active"  # flag: marked, not revoked
    assert gw.registry.get_sample_value("gateway_key_exposures_total", {"reason": "query_string"}) == 1.0
    status, _ = await get(https, gw, "/api/items", **{"X-API-Key": secret})
    assert status == 200  # flagged keys still work


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


@pytest.mark.parametrize("how", ["X-API-Key", "Bearer", "Basic", "query"])
async def test_a_key_sent_over_plain_http_is_marked_exposed(start_gateway, upstream, how: str) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream, server={"plain_http_port": 0})
    headers = {"X-API-Key": secret} if how == "X-API-Key" else (
        {"Authorization": f"Bearer {secret}"} if how == "Bearer" else
        {"Authorization": basic(key.id, secret)} if how == "Basic" else {})
    target = f"/api/items?key={secret}" if how == "query" else "/api/items"
    plain_url = URL(f"http://127.0.0.1:{gw.plain_port}{target}", encoded=True)
    async with aiohttp.ClientSession() as plain, plain.get(plain_url, headers=headers) as resp:
        assert resp.status == 403
        assert (await read_json(resp))["error"]["code"] == "HTTPS_REQUIRED"
    assert upstream[1].hits == 0
    got = await gw.accounts.key(key.id)
    assert got.exposure is not None and got.exposure["reason"] == "plain_http" and got.revoked_at is not None
    assert gw.registry.get_sample_value("gateway_key_exposures_total", {"reason": "plain_http"}) == 1.0


async def test_plain_http_without_a_key_is_refused_as_before(start_gateway, upstream) -> None:
    gw, key, _ = await gateway_with_key(start_gateway, upstream, server={"plain_http_port": 0})
    async with aiohttp.ClientSession() as plain, plain.get(
            f"http://127.0.0.1:{gw.plain_port}/api/items", headers={"X-API-Key": "nope"}) as resp:
        assert resp.status == 403
    assert (await gw.accounts.key(key.id)).exposed_at is None


async def test_behind_a_trusted_proxy_only_a_client_that_came_by_http_leaks(start_gateway, upstream) -> None:
    gw, key, secret = await gateway_with_key(start_gateway, upstream,
                                             server={"plain_http_port": 0, "trusted_proxies": ["127.0.0.0/8"]})
    url = f"http://127.0.0.1:{gw.plain_port}/api/items"
    async with aiohttp.ClientSession() as proxy:
        async with proxy.get(url, headers={"X-API-Key": secret, "X-Forwarded-Proto": "https"}) as resp:
            assert resp.status == 200  # TLS ended at the proxy: the key never crossed in clear
        assert (await gw.accounts.key(key.id)).exposed_at is None
        async with proxy.get(url, headers={"X-API-Key": secret, "X-Forwarded-Proto": "http"}) as resp:
            assert resp.status == 403  # the client reached the proxy over plain HTTP
    got = await gw.accounts.key(key.id)
    assert got.exposure is not None and got.exposure["reason"] == "plain_http"
