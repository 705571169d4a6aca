"""PostgreSQL going away and coming back while the gateway serves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import admin_url
from tests.services import POSTGRES, require_postgres


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, asyncpg.Connection, str]]:
    """A database of this test's own, which the test can close to new connections."""
    require_postgres()
    name = f"gw_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name, admin, name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def readiness(gw) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/readyz")) as resp:
        return resp.status, await resp.json()


async def ready_again(gw, within: float = 30) -> None:
    """Ready again once the store answers and the record writes kept through the outage have gone
    out: the buffers retry on their own schedule, so this polls (with a deadline) for the outcome."""
    deadline = asyncio.get_running_loop().time() + within
    while (status := await readiness(gw))[0] != 200:
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.1)


async def test_cached_keys_survive_an_outage_new_ones_get_503_and_all_recovers(
    start_gateway, upstream, https, database
) -> None:
    url, admin, name = database
    gw = await start_gateway(routes=routes(upstream[0]), store={"url": url, "cache_ttl": 300})
    _, known = await tenant_and_key(gw)
    _, unseen = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": known}))[0] == 200

    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)

    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": known}))[0] == 200  # from the cache
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": unseen})
    assert (status, body["error"]["code"]) == (503, "STORE_UNAVAILABLE")
    status, ready = await readiness(gw)
    assert status == 503 and ready["error"]["code"] == "NOT_READY"
    assert any(d["field"] == "store" for d in ready["error"]["details"])

    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    status, body, _ = await call(https, gw, "/api/v1/visitors", **{"X-API-Key": unseen})
    assert status == 200, body  # the pool reconnects on its own
    await ready_again(gw)
    await gw.stop()  # before the database goes
