"""Canary keys: planted to be found. Any request with one gets the very 401 of an unknown key
(body, headers, code path), never passes however often it is cached, and raises the alarm: the
`key.canary_used` event and audit entry naming the client's address, user agent and path, and
`gateway_canary_uses_total`."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from yarl import URL

from gateway.credentials.keyformat import generate_key, hash_key
from tests.conftest import ADMIN_TOKEN, admin_url, proxy_url, read_json
from tests.leaks.conftest import ADMIN, events

AGENT = "python-requests/2.31 (scraper)"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def gateway_with_canary(start_gateway: Any, upstream: Any, **overrides: Any) -> tuple[Any, dict[str, Any], str]:
    url, _ = upstream
    gw = await start_gateway(routes=[{"name": "api", "path": "/api", "upstream": url}], **overrides)
    async with aiohttp.ClientSession(headers=AUTH) as admin:
        async with admin.post(admin_url(gw, "/admin/tenants"), json={"id": "acme", "name": "Acme", "plan": "starter"}):
            pass
        async with admin.post(admin_url(gw, "/admin/keys"), json={
                "tenant_id": "acme", "name": "in .env.example", "scope": "read_write", "canary": True}) as resp:
            assert resp.status == 201, await resp.text()
            made = await read_json(resp)
    return gw, made, made.pop("key")


async def ask(https: aiohttp.ClientSession, gw: Any, headers: dict[str, str], path: str = "/api/items",
              method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    async with https.request(method, URL(proxy_url(gw, path), encoded=True),
                             headers={"User-Agent": AGENT, **headers}) as resp:
        body = await resp.read()
        kept = {k: v for k, v in resp.headers.items() if k.lower() not in ("date", "x-request-id")}
        return resp.status, body, kept


async def audit_of(gw: Any, action: str) -> list[dict[str, Any]]:
    await gw.canary_alarm.settled()
    assert await gw.recorder.audit_buffer.flush()
    async with aiohttp.ClientSession(headers=AUTH) as admin, admin.get(
            admin_url(gw, f"/admin/audit?action={action}")) as resp:
        assert resp.status == 200
        return (await read_json(resp))["data"]


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


async def test_a_canary_is_answered_as_an_unknown_key_and_raises_the_alarm(start_gateway, upstream, https) -> None:
    gw, made, secret = await gateway_with_canary(start_gateway, upstream)
    assert made["canary"] is True and made["status"] == "active"
    unknown = generate_key("gw", "live")
    for headers in ({"X-API-Key": "{}"}, {"Authorization": "Bearer {}"}):
        expected = await ask(https, gw, {k: v.format(unknown) for k, v in headers.items()})
        assert expected[0] == 401
        for _ in range(3):  # a miss, then from the cache: refused every time
            assert await ask(https, gw, {k: v.format(secret) for k, v in headers.items()}) == expected
    unknown_id = await ask(https, gw, {"Authorization": basic("key_unknown", unknown)})
    assert await ask(https, gw, {"Authorization": basic(made["id"], secret)}) == unknown_id
    assert upstream[1].hits == 0
    entries = await audit_of(gw, "key.canary_used")
    assert len(entries) == 1  # one address, within a minute: reported once, counted each time
    entry = entries[0]
    assert entry["target_id"] == made["id"] and entry["tenant_id"] == "acme" and entry["key_name"] == "in .env.example"
    assert entry["source_ip"] == "127.0.0.1"
    assert entry["details"] == {"user_agent": AGENT, "method": "GET", "path": "/api/items"}
    assert gw.registry.get_sample_value("gateway_canary_uses_total") == 7.0
    view = await gw.accounts.key(made["id"])
    assert view.exposed_at is None and view.revoked_at is None  # still armed


async def test_a_canary_takes_the_unknown_keys_path(start_gateway, upstream, https, monkeypatch) -> None:
    """The same steps as any well-formed key: one hash of the whole key, one cache lookup of it,
    and no wait for the alarm's writes (they happen after the answer)."""
    gw, _, secret = await gateway_with_canary(start_gateway, upstream)
    hashed: list[str] = []
    real_hash = hash_key
    monkeypatch.setattr(gw.guard, "_hash_secret", lambda s: hashed.append(s) or real_hash(s))  # injected: a compiled guard
    reported: list[str] = []
    real_note = gw.accounts.note_canary_use

    async def note(key_id: str, **fields: Any) -> bool:
        reported.append(key_id)
        return await real_note(key_id, **fields)

    monkeypatch.setattr(gw.accounts, "note_canary_use", note)
    for key in (generate_key("gw", "live"), secret):
        hashed.clear()
        status, _, _ = await ask(https, gw, {"X-API-Key": key})
        assert status == 401 and hashed == [key]
    await gw.canary_alarm.settled()
    assert len(reported) == 1


async def test_a_canary_goes_back_to_the_store_when_an_unknown_key_does(start_gateway, upstream, https,
                                                                       monkeypatch) -> None:
    """Cached for the valid keys' TTL, a canary asked again after the unknown keys' shorter one
    was answered from memory while an unknown key went to the store: a client timing the two
    (priming each, then asking again 3 s later) measured the difference. Now both are looked
    up alike."""
    gw, _, secret = await gateway_with_canary(start_gateway, upstream,
                                              store={"cache_ttl": 60, "negative_cache_ttl": 0.1})
    lookups: list[str] = []
    real_lookup = gw.store.get_principal_by_hash

    async def counting(secret_hash: str) -> Any:
        lookups.append(secret_hash)
        return await real_lookup(secret_hash)

    monkeypatch.setattr(gw.store, "get_principal_by_hash", counting)
    looked_up = {}
    for key in (generate_key("gw", "live"), secret):
        lookups.clear()
        for _ in range(3):
            status, _, _ = await ask(https, gw, {"X-API-Key": key})
            assert status == 401
            await asyncio.sleep(0.2)  # the negative TTL passing is the behaviour under test
        looked_up[key == secret] = len(lookups)
    assert looked_up[True] == looked_up[False] == 3


async def test_a_canary_in_a_query_string_stays_armed_and_raises_the_alarm(start_gateway, upstream, https) -> None:
    gw, made, secret = await gateway_with_canary(start_gateway, upstream)
    status, body, _ = await ask(https, gw, {}, path=f"/api/items?token={secret}")
    assert status == 400 and b"CREDENTIAL_IN_QUERY" in body
    entries = await audit_of(gw, "key.canary_used")
    assert [(e["target_id"], e["details"]["path"]) for e in entries] == [(made["id"], "/api/items")]
    key = await gw.accounts.key(made["id"])
    assert key.exposed_at is None and key.revoked_at is None
    assert await gw.accounts.mark_exposed(made["id"], "secret_scanning") is False  # a scanner's report neither


async def test_a_canary_cannot_get_a_token(start_gateway, upstream, https) -> None:
    gw, made, secret = await gateway_with_canary(start_gateway, upstream)
    status, body, _ = await ask(https, gw, {"Authorization": f"Bearer {secret}"}, path="/api/v1/auth/token",
                                method="POST")
    assert status == 401 and b"INVALID_CREDENTIALS" in body
    entries = await audit_of(gw, "key.canary_used")
    assert entries[0]["details"]["path"] == "/api/v1/auth/token" and entries[0]["source_ip"] == "127.0.0.1"


async def test_a_canary_use_is_an_event_and_an_audit_entry(made) -> None:
    accounts, store, audit = await made()
    key, _ = await accounts.create_key({"tenant_id": "acme", "name": "honeypot", "scope": "read_only",
                                        "canary": True}, ADMIN)
    assert key.canary
    rotated, _ = await accounts.rotate_key(key.id, ADMIN)
    assert rotated.canary  # a new secret for the same trap
    assert await accounts.note_canary_use(rotated.id, client_ip="203.0.113.7", user_agent="curl/8.5",
                                          path="/api/v1/visitors", method="DELETE")
    (event,) = [e for e in await events(store) if e["type"] == "key.canary_used"]
    data = event["data"]
    assert data["key"]["id"] == rotated.id and data["client_ip"] == "203.0.113.7"
    assert (data["user_agent"], data["method"], data["path"]) == ("curl/8.5", "DELETE", "/api/v1/visitors")
    entry = audit.entries[-1]
    assert (entry["action"], entry["target_id"], entry["source_ip"]) == ("key.canary_used", rotated.id, "203.0.113.7")
    assert entry["details"] == {"user_agent": "curl/8.5", "method": "DELETE", "path": "/api/v1/visitors"}
    assert not await accounts.note_canary_use("key_gone", client_ip="203.0.113.7", user_agent=None, path="/",
                                              method="GET")


@pytest.mark.parametrize("value", ["yes", 1, None])
async def test_canary_must_be_true_or_false(start_gateway, value: Any) -> None:
    gw = await start_gateway()
    async with aiohttp.ClientSession(headers=AUTH) as admin:
        async with admin.post(admin_url(gw, "/admin/tenants"), json={"id": "acme", "name": "Acme", "plan": "starter"}):
            pass
        async with admin.post(admin_url(gw, "/admin/keys"), json={
                "tenant_id": "acme", "name": "k", "scope": "read_write", "canary": value}) as resp:
            assert resp.status == 422
            assert (await read_json(resp))["error"]["details"][0]["field"] == "canary"
