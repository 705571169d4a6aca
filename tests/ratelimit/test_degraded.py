"""Readiness tells the truth about the rate limiter: a real Redis behind a relay that is stopped
(listener closed, connections cut) and started again on the same port."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import admin_url
from tests.observability.test_metrics import samples, scrape
from tests.services import own_redis_names, require_redis


class Relay:
    """TCP to the local Redis (6379) through a port of its own, which can be taken away."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers |= {client_w, redis_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(client_r, redis_w), pipe(redis_r, client_w))
        self._writers -= {client_w, redis_w}


@pytest.fixture
async def relay() -> Any:
    require_redis()
    relay = Relay()
    await relay.start()
    yield relay
    await relay.stop()


async def ready(gw: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/readyz")) as resp:
        return resp.status, await resp.json()


async def degraded_gauge(gw: Any) -> float:
    return samples(await scrape(gw))[("gateway_ratelimit_degraded", ())]


async def redis_gateway(start_gateway: Any, upstream: str, relay: Relay, mode: str) -> Any:
    redis, channel = own_redis_names()
    return await start_gateway(routes=routes(upstream), store=channel, ratelimit={
        **redis, "redis_url": f"redis://127.0.0.1:{relay.port}/0", "on_backend_error": mode,
    })


async def test_allow_serves_unlimited_and_says_so_while_redis_is_down(start_gateway, upstream, https, relay) -> None:
    gw = await redis_gateway(start_gateway, upstream[0], relay, "allow")
    _, secret = await tenant_and_key(gw, rate_limit_per_minute=2)
    h = {"X-API-Key": secret}
    assert await ready(gw) == (200, {"status": "ready", "checks": {"store": "ok", "ratelimit": "ok", "records": "ok"}})
    assert await degraded_gauge(gw) == 0

    await relay.stop()
    statuses = [(await call(https, gw, "/api/v1/visitors", **h))[0] for _ in range(4)]
    assert statuses == [200] * 4  # over the key's limit of 2: admitted, by configuration
    status, body = await ready(gw)
    assert status == 200 and body["status"] == "degraded" and body["checks"]["ratelimit"] == "degraded"
    assert body["degraded"][0]["field"] == "ratelimit" and "without limits" in body["degraded"][0]["issue"]
    assert await degraded_gauge(gw) == 1

    await relay.start()  # the same port again
    # the client reconnects on its own; a ping or two may meet a dead connection (or, on a loaded
    # machine, its 0.5 s timeout): asked again until it says ok, within a deadline
    back_by = asyncio.get_running_loop().time() + 15
    while (status_body := await ready(gw))[1]["checks"]["ratelimit"] != "ok":
        assert asyncio.get_running_loop().time() < back_by, status_body
        await asyncio.sleep(0.05)  # polling the readiness, not standing in for an event
    status, body = status_body
    assert (status, body["status"]) == (200, "ready")
    assert await degraded_gauge(gw) == 0
    assert [(await call(https, gw, "/api/v1/visitors", **h))[0] for _ in range(3)][-1] == 429  # limits again


async def test_deny_is_not_ready_while_redis_is_down(start_gateway, upstream, https, relay) -> None:
    gw = await redis_gateway(start_gateway, upstream[0], relay, "deny")
    _, secret = await tenant_and_key(gw)
    await relay.stop()
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": secret}))[0] == 429
    status, body = await ready(gw)
    assert status == 503 and body["checks"]["ratelimit"].startswith("redis unreachable")
    assert body["error"]["details"] == [{"field": "ratelimit", "issue": body["checks"]["ratelimit"]}]
    assert await degraded_gauge(gw) == 0  # refusing, not admitting without limits: readiness says it
