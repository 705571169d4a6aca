"""Two `gateway run` processes on one PostgreSQL and one Redis, as a deployment runs them."""

from __future__ import annotations

import ssl
import statistics
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import ADMIN_TOKEN
from tests.scaleout.pair import start_pair
from tests.services import drop_schema, postgres_url, require_postgres, require_redis


async def test_revoke_on_one_process_is_refused_by_the_other(tmp_path: Path, server_cert, upstream, ca) -> None:
    require_postgres()
    require_redis()
    url, _ = upstream
    tag = uuid.uuid4().hex[:8]
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with AsyncExitStack() as stack:
        ports, procs = await start_pair(stack, tmp_path, server_cert, url, tag)
        admin = await stack.enter_async_context(
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}))
        client = await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)))
        (a_port, a_admin), (b_port, b_admin) = ports

        async def post(admin_port: int, path: str, body: Any = None) -> Any:
            async with admin.post(f"http://127.0.0.1:{admin_port}{path}", json=body) as resp:
                assert resp.status in (200, 201), await resp.text()
                return await resp.json()

        async def use(port: int, secret: str) -> int:
            async with client.get(f"https://127.0.0.1:{port}/api", headers={"X-API-Key": secret}) as resp:
                await resp.read()
                return resp.status

        await post(a_admin, "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
        lags = []
        for _ in range(10):
            key = await post(a_admin, "/admin/keys", {"tenant_id": "acme", "name": "k", "scope": "read_write"})
            assert await use(b_port, key["key"]) == 200  # B has it cached now
            revoked = await post(a_admin, f"/admin/keys/{key['id']}/revoke?wait=true")
            assert revoked["propagation"]["complete"] is True and revoked["propagation"]["instances"] == 1
            lags.append(revoked["propagation"]["seconds"])
            assert await use(b_port, key["key"]) == 401
        # by invalidation, not by the cache's expiry (cache_ttl 5 s): typically a few ms; a loaded
        # machine can stall one round past a second, so the median is what is bounded tightly
        assert statistics.median(lags) < 0.5 and max(lags) < 5.0, lags
        for running in procs:
            assert await running.stop() == 0
    await drop_schema(postgres_url(tmp_path))
