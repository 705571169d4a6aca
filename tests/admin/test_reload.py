"""Reloading routes and plans from the config file: over the admin API and on SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.app import Gateway
from gateway.config import load_config
from tests.access.test_keys_e2e import ADMIN, call
from tests.cli.test_run import ENV, free_port
from tests.conftest import ADMIN_TOKEN, admin_url, base_config
from tests.processes import start_gateway_process


def config(tmp_path: Path, server_cert: Any, upstream: str, route_path: str, rpm: int, **server: Any) -> dict[str, Any]:
    return base_config(
        tmp_path, server_cert, server=server,
        plans={"starter": {"requests_per_minute": rpm}},
        routes=[{"name": "api", "path": route_path, "upstream": upstream},
                {"name": "slow", "path": "/slow", "upstream": upstream, "auth": []}],
    )


@pytest.fixture
async def from_file(tmp_path: Path, server_cert, upstream) -> AsyncIterator[tuple[Gateway, Path]]:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, server_cert, upstream[0], "/v1/old", 100)))
    gw = Gateway(load_config(path), admin_token=ADMIN_TOKEN)
    await gw.start()
    yield gw, path
    await gw.stop()


async def reload(gw: Gateway) -> tuple[int, Any]:
    async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
                admin.post(admin_url(gw, "/admin/reload")) as resp):
        return resp.status, await resp.json()


async def test_reload_swaps_routes_and_plans_and_refuses_a_broken_file(
    from_file, tmp_path: Path, server_cert, upstream, https
) -> None:
    gw, path = from_file
    await gw.accounts.create_tenant({"id": "acme", "name": "Acme", "plan": "starter"}, ADMIN)
    _, secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "k", "scope": "read_write"}, ADMIN)
    h = {"X-API-Key": secret}
    status, _, headers = await call(https, gw, "/v1/old", **h)
    assert status == 200 and headers["X-RateLimit-Limit"] == "100"
    in_flight = asyncio.ensure_future(https.get(f"https://127.0.0.1:{gw.proxy_port}/slow"))
    await asyncio.wait_for(upstream[1].entered.wait(), 5)

    path.write_text(yaml.safe_dump(config(tmp_path, server_cert, upstream[0], "/v2/new", 7)))
    status, body = await reload(gw)
    assert status == 200 and body == {"routes": 2, "plans": ["starter"], "not_applied": []}
    async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
                admin.get(admin_url(gw, "/admin/plans")) as resp):
        assert (await resp.json())["data"] == [{"name": "starter", "requests_per_minute": 7}]
    assert (await call(https, gw, "/v1/old", **h))[0] == 404
    status, _, headers = await call(https, gw, "/v2/new", **h)
    assert status == 200 and headers["X-RateLimit-Limit"] == "7"  # the plan changed for cached keys too
    upstream[1].release.set()
    async with await asyncio.wait_for(in_flight, 5) as resp:
        assert resp.status == 200  # routed before the reload, finished after it

    broken = config(tmp_path, server_cert, upstream[0], "/v3/broken", 7)
    broken["routes"][0]["upstream"] = "ftp://nope"
    broken["plans"]["starter"]["requests_per_minute"] = 0
    path.write_text(yaml.safe_dump(broken))
    status, body = await reload(gw)
    assert status == 422
    fields = {d["field"] for d in body["error"]["details"]}
    assert {"routes[0].upstream", "plans.starter.requests_per_minute"} <= fields
    assert (await call(https, gw, "/v2/new", **h))[0] == 200  # the running config stayed
    assert (await call(https, gw, "/v3/broken", **h))[0] == 404
    await gw.recorder.audit_buffer.flush()
    audit = await gw.recorder.store.list_audit(after=0, limit=100)
    assert [e.action for e in audit].count("config.reloaded") == 1


async def test_sighup_reloads_a_running_gateway(tmp_path: Path, server_cert, upstream, ca) -> None:
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({**config(tmp_path, server_cert, upstream[0], "/v1/old", 100, port=port),
                                    "routes": [{"name": "api", "path": "/v1/old", "upstream": upstream[0], "auth": []}]}))
    running = await start_gateway_process(path, tmp_path, ENV)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as client:
            async def status(route: str) -> int:
                async with client.get(f"https://127.0.0.1:{port}{route}") as resp:
                    return resp.status

            assert await status("/v1/old") == 200
            path.write_text(yaml.safe_dump({**config(tmp_path, server_cert, upstream[0], "/v1/old", 100, port=port),
                                            "routes": [{"name": "api", "path": "/v2/new", "upstream": upstream[0],
                                                        "auth": []}]}))
            running.signal(signal.SIGHUP)
            await running.wait_log("config reloaded")
            assert (await status("/v1/old"), await status("/v2/new")) == (404, 200)
            path.write_text("routes: [unclosed")
            running.signal(signal.SIGHUP)
            await running.wait_log("config reload refused")
            assert await status("/v2/new") == 200
        assert await running.stop() == 0
    finally:
        await running.kill()
