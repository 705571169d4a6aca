"""No timing oracle: every well-formed key, known or not, takes the same path through hashing,
and secrets are only ever compared in constant time. Asserted on the code path (which calls are
made, with what), not with a stopwatch, which would flake on a shared machine."""

from __future__ import annotations

import hmac
from typing import Any

import aiohttp

from gateway.admin import auth as admin_auth
from gateway.credentials.keyformat import generate_key, hash_key
from tests.access.test_keys_e2e import ADMIN, routes, tenant_and_key
from tests.conftest import ADMIN_TOKEN, admin_url, proxy_url


async def test_unknown_revoked_and_valid_keys_each_hash_once_and_look_up_by_the_whole_hash(
    start_gateway, upstream, https, monkeypatch
) -> None:
    gw = await start_gateway(routes=routes(upstream[0]))
    _, valid = await tenant_and_key(gw)
    revoked_row, revoked = await tenant_and_key(gw)
    await gw.accounts.revoke_key(revoked_row.id, ADMIN)
    unknown = generate_key("gw", "live")
    hashed: list[str] = []
    real_hash = hash_key
    # the guard's hash function, injected (a compiled guard binds the module's global early)
    monkeypatch.setattr(gw.guard, "_hash_secret", lambda secret: hashed.append(secret) or real_hash(secret))
    lookups: list[str] = []
    real_peek = gw.cache.peek

    def peek(lookup: str) -> Any:
        lookups.append(lookup)
        return real_peek(lookup)

    monkeypatch.setattr(gw.cache, "peek", peek)
    url = proxy_url(gw, "/api/v1/visitors")
    for key, expected in ((unknown, 401), (revoked, 401), (valid, 200)):
        hashed.clear()
        lookups.clear()
        async with https.get(url, headers={"X-API-Key": key}) as resp:
            assert resp.status == expected
        # the same steps whatever the outcome: one hash of the whole key, one lookup of the whole hash
        assert hashed == [key]
        assert lookups == [real_hash(key)] and len(lookups[0]) == 64


async def test_the_admin_token_is_compared_in_constant_time(start_gateway, monkeypatch) -> None:
    gw = await start_gateway()
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(admin_auth.hmac, "compare_digest", spy)
    async with aiohttp.ClientSession() as client:
        for token, expected in ((ADMIN_TOKEN[:-1] + "x", 401), ("short", 401), (ADMIN_TOKEN, 200)):
            async with client.get(admin_url(gw, "/admin/tenants"),
                                  headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == expected
    # every attempt compared fixed-length digests: nothing about the token's length or prefix leaks
    assert len(compared) == 3 and all(len(a) == len(b) == 32 for a, b in compared)
