"""A flood of random keys through the proxy: every one refused with 401, malformed ones without a
store lookup, well-formed unknown ones remembered in a bounded negative cache, and the valid key
answered from the cache throughout (it never waits on the store behind the flood)."""

from __future__ import annotations

import asyncio
import os

from gateway.credentials.keyformat import generate_key
from tests.access.test_keys_e2e import routes, tenant_and_key
from tests.conftest import proxy_url

FLOOD = 4000
CONCURRENCY = 32


async def test_random_keys_are_refused_and_bounded_while_the_valid_key_stays_cached(start_gateway, upstream, https) -> None:
    gw = await start_gateway(routes=routes(upstream[0]),
                             # nothing expires mid-flood on a slow machine (a valid key fetched again: 4,002 misses)
                             store={"negative_cache_size": 500, "cache_ttl": 3600, "negative_cache_ttl": 3600},
                             ratelimit={"failed_auth_per_minute": 0},  # the cache alone (test_failed_auth.py)
                             plans={"starter": {"requests_per_minute": 1_000_000}})
    _, valid = await tenant_and_key(gw)
    url = proxy_url(gw, "/api/v1/visitors")

    async def status(key: str) -> int:
        async with https.get(url, headers={"X-API-Key": key}) as resp:
            await resp.read()
            return resp.status

    assert await status(valid) == 200  # now cached
    stats = gw.cache.stats
    misses_before, hits_before = stats.misses, stats.hits

    malformed = [f"gw_live_{os.urandom(20).hex()}" for _ in range(FLOOD)]  # no valid checksum
    results = await asyncio.gather(*(status(k) for k in malformed[:500]))
    assert set(results) == {401}
    assert stats.misses == misses_before  # refused by the checksum, before any lookup

    well_formed = [generate_key("gw", "live") for _ in range(FLOOD)]  # valid checksums, unknown
    queue = list(well_formed)
    valid_statuses: list[int] = []
    flood_statuses: list[int] = []

    async def client(n: int) -> None:
        while queue:
            key = queue.pop()
            flood_statuses.append(await status(key))
            if n == 0:  # one client interleaves the valid key with the flood
                valid_statuses.append(await status(valid))

    await asyncio.gather(*(client(n) for n in range(CONCURRENCY)))
    assert set(flood_statuses) == {401} and len(flood_statuses) == FLOOD
    assert valid_statuses and set(valid_statuses) == {200}
    assert stats.misses - misses_before == FLOOD  # one lookup per unknown key, none for the valid one
    assert stats.hits - hits_before >= len(valid_statuses)
    assert gw.cache.negative_size <= 500 and len(gw.cache) == 1  # memory stays bounded

    # a replayed unknown key is answered from the negative cache, not the store
    misses = stats.misses
    assert await status(well_formed[0]) == 401  # the last one the flood sent
    assert stats.misses == misses
