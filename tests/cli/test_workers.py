"""`server.workers: 2` with the Redis limiter: two processes, one exact limit, clean stop."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.test_run import ENV, free_port, gateway, write_config
from tests.conftest import base_config, require_service
from tests.processes import start_gateway_process
from tests.ratelimit.test_limiters import redis_reachable
from tests.services import own_redis_names


async def test_two_workers_share_one_exact_redis_limit(tmp_path: Path, server_cert, upstream, ca) -> None:
    require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
    url, state = upstream
    port, admin_port = free_port(), free_port()
    redis, channel = own_redis_names()
    cfg = base_config(
        tmp_path, server_cert,
        server={"port": port, "workers": 2},
        admin={"port": admin_port},
        ratelimit=redis, store=channel,
        routes=[{"name": "api", "path": "/api", "upstream": url}],
    )
    path = write_config(tmp_path, cfg)
    assert gateway("tenants", "create", "--config", str(path), "--id", "acme", "--name", "Acme",
                   "--plan", "starter", cwd=tmp_path).returncode == 0
    made = gateway("keys", "create", "--config", str(path), "--tenant", "acme", "--name", "k",
                   "--rate-limit", "100", "--json", cwd=tmp_path)
    secret = json.loads(made.stdout)["key"]
    running = await start_gateway_process(path, tmp_path, ENV, workers=2)
    try:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        connector = aiohttp.TCPConnector(ssl=ctx, force_close=True, limit=50)
        async with aiohttp.ClientSession(connector=connector) as client:
            async def one() -> int:
                async with client.get(f"https://127.0.0.1:{port}/api", headers={"X-API-Key": secret}) as resp:
                    await resp.read()
                    return resp.status
            statuses = await asyncio.gather(*(one() for _ in range(200)))
        assert statuses.count(200) == 100 and statuses.count(429) == 100
        assert state.hits == 100
        # Whichever worker answers the scrape, it reports both workers' requests: its own at once,
        # the other's pushed within a second (gateway/observability/metrics.py); never more.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as scraper:
            async def figures() -> tuple[float, dict[str, float], float]:
                async with scraper.get(f"http://127.0.0.1:{admin_port}/metrics") as resp:
                    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
                requests = sum(s.value for s in families["gateway_requests"].samples if s.name.endswith("_total"))
                decisions = {s.labels["result"]: s.value for s in families["gateway_ratelimit_decisions"].samples
                             if s.name.endswith("_total")}
                timed = sum(s.value for s in families["gateway_request_duration_seconds"].samples
                            if s.name.endswith("_count"))
                return requests, decisions, timed

            deadline = asyncio.get_running_loop().time() + 30  # a loaded machine delays the pushes
            while (seen := await figures())[0] < 200 and asyncio.get_running_loop().time() < deadline:
                assert seen[0] <= 200
                await asyncio.sleep(0.1)  # polling a figure documented to lag by up to a second
            for _ in range(4):
                assert seen == (200, {"allowed": 100, "limited": 100}, 200)
                seen = await figures()
        assert await running.stop() == 0
    finally:
        await running.kill()


async def test_workers_opening_a_new_database_together_all_start(tmp_path: Path, server_cert, ca) -> None:
    """Nothing exists first: every worker migrates the database and looks for its signing key at
    the same moment (they raced: a worker failed on tables another had just created, or read a
    key file another was still writing)."""
    require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
    port = free_port()
    redis, channel = own_redis_names()
    cfg = base_config(tmp_path, server_cert, server={"port": port, "workers": 4}, admin={"port": free_port()},
                      ratelimit=redis, store={"url": f"sqlite:///{tmp_path}/fresh/gateway.db", **channel}, routes=[])
    path = write_config(tmp_path, cfg)
    running = await start_gateway_process(path, tmp_path, ENV, workers=4)
    try:
        assert await running.stop() == 0
    finally:
        await running.kill()
    assert not [e for e in running.lines if e.get("level") == "error" or "error:" in str(e.get("msg", ""))]
    # one signing key for all of them, else a token minted by one worker fails on another
    assert len(list((tmp_path / "data" / "signing-keys").glob("*/*.pem"))) == 1
