"""The Redis limiter with leased permits, as deployments run it: several `gateway run` processes of
several workers each, and the Redis commands a busy key costs."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import ADMIN_TOKEN
from tests.scaleout.pair import start_pair
from tests.services import (
    REDIS,
    drop_schema,
    postgres_url,
    private_redis_server,
    require_postgres,
    require_redis,
)


async def test_a_burst_over_two_instances_of_four_workers_gets_exactly_the_limit(
    tmp_path: Path, server_cert, upstream, ca,
) -> None:
    require_postgres()
    require_redis()
    url, state = upstream
    tag = uuid.uuid4().hex[:8]
    limit = 200
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with AsyncExitStack() as stack:
        ports, procs = await start_pair(stack, tmp_path, server_cert, url, tag, workers=4)
        admin = await stack.enter_async_context(
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}))
        (a_port, a_admin), (b_port, _) = ports

        async def post(path: str, body: Any) -> Any:
            async with admin.post(f"http://127.0.0.1:{a_admin}{path}", json=body) as resp:
                assert resp.status == 201, await resp.text()
                return await resp.json()

        await post("/admin/tenants", {"id": "acme", "name": "Acme", "plan": "enterprise"})
        key = await post("/admin/keys", {"tenant_id": "acme", "name": "k", "scope": "read_write",
                                         "rate_limit_per_minute": limit})
        # A new connection per request: the kernel spreads them over each instance's workers.
        client = await stack.enter_async_context(aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, force_close=True, limit=48)))

        async def use(port: int) -> int:
            async with client.get(f"https://127.0.0.1:{port}/api", headers={"X-API-Key": key["key"]}) as resp:
                await resp.read()
                return resp.status

        # Over both instances first (their workers lease permits), then the rest to B alone: A's
        # workers' permits must come back to B (recalled), or the key would not get its limit.
        # Ten at a time: once one is refused the window holds the limit, so nothing after that
        # chunk may be admitted (an early refusal, with permits stranded elsewhere, would be).
        statuses = await asyncio.gather(*(use(a_port if i % 2 else b_port) for i in range(80)))
        chunks = [await asyncio.gather(*(use(b_port) for _ in range(10))) for _ in range((limit + 20 - 80) // 10)]
        refused_in = next(i for i, chunk in enumerate(chunks) if 429 in chunk)
        assert all(set(chunk) == {429} for chunk in chunks[refused_in + 1:]), chunks
        statuses += [status for chunk in chunks for status in chunk]
        assert (statuses.count(200), statuses.count(429)) == (limit, 20)
        assert state.hits == limit
        for running in procs:
            assert await running.stop() == 0
    # Stopped workers give their leases back: the key's window holds exactly its admissions, and
    # some were decided in a worker from leased permits (recorded as `<lease>:u<n>`).
    stored = await admissions(f"gwtest:{tag}:")
    assert len(stored) == limit
    assert any(b":u" in member for member in stored)
    await drop_schema(postgres_url(tmp_path))


async def admissions(prefix: str) -> list[bytes]:
    client = aioredis.from_url(REDIS)
    try:
        found = []
        async for key in client.scan_iter(match=prefix + "*", _type="zset"):
            found += await client.zrange(key, 0, -1)
        return found
    finally:
        await client.aclose()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[str]:
    async with private_redis_server(tmp_path) as url:
        yield url


# What the limiter's script calls inside Redis: counted by INFO, but not sent by the gateway.
IN_SCRIPT = {"time", "zremrangebyscore", "zrem", "zadd", "zcard", "zrange", "pexpire", "incr", "hset", "hdel",
             "hgetall", "exists", "set", "publish"}


async def commands(url: str) -> int:
    """Commands the gateway sent Redis (a script counts once; INFO, this test's own, not at all)."""
    client = aioredis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return sum(int(v["calls"]) for k, v in stats.items() if k.removeprefix("cmdstat_") not in {"info", *IN_SCRIPT})


async def test_a_key_far_from_its_limit_costs_redis_few_commands(start_gateway, upstream, https,
                                                                 private_redis) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), ratelimit={"backend": "redis", "redis_url": private_redis})
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=1_000_000)
    h = {"X-API-Key": secret}
    assert (await call(https, gw, "/api/v1/visitors", **h))[0] == 200
    before = await commands(private_redis)
    n = 400
    for _ in range(n // 20):
        statuses = await asyncio.gather(*(call(https, gw, "/api/v1/visitors", **h) for _ in range(20)))
        assert [s for s, _, _ in statuses] == [200] * 20
    used = await commands(private_redis) - before
    assert used / n < 0.2, f"{used} Redis commands for {n} requests"
