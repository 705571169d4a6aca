"""`server.watch_config: true` on a real `gateway run`: a rewritten config file is served without
SIGHUP (replaced by a rename, as editors and ConfigMaps do, or written in place); a broken one is
logged and the running routes keep serving; with two workers, each reloads itself. And with two
workers, SIGHUP to the supervisor or `POST /admin/reload` to one worker reloads them all."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.cli.test_run import ENV, free_port
from tests.conftest import ADMIN_TOKEN, base_config, require_service
from tests.processes import GatewayProcess, start_gateway_process
from tests.ratelimit.test_limiters import redis_reachable
from tests.services import own_redis_names


def config(tmp_path: Path, server_cert: Any, upstream: str, port: int, *paths: str, **server: Any) -> str:
    cfg = base_config(tmp_path, server_cert,
                      server={"port": port, "watch_config": True, "watch_interval": 0.1, **server},
                      routes=[{"name": f"r{i}", "path": p, "upstream": upstream, "auth": []}
                              for i, p in enumerate(paths)])
    return yaml.safe_dump(cfg)


def replace(path: Path, content: str) -> None:
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(content)
    os.replace(tmp, path)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    """Polls an observable outcome, with a deadline."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.05)  # the interval between polls of the outcome, not synchronisation


def refusals(running: GatewayProcess) -> list[dict[str, Any]]:
    return [e for e in running.lines if str(e.get("msg", "")).startswith("config reload refused")]


def client(ca: Any) -> aiohttp.ClientSession:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, force_close=True))


async def statuses(ca: Any, port: int, route: str, n: int = 40) -> list[int]:
    """The statuses of `n` concurrent requests for a route, each on a new connection (the kernel
    spreads those over the workers)."""
    async with client(ca) as http:
        async def status() -> int:
            async with http.get(f"https://127.0.0.1:{port}{route}") as resp:
                return resp.status

        return list(await asyncio.gather(*(status() for _ in range(n))))


async def test_a_rewritten_config_file_is_served_without_sighup(tmp_path: Path, server_cert, upstream, ca) -> None:
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(config(tmp_path, server_cert, upstream[0], port, "/v1/old"))
    running = await start_gateway_process(path, tmp_path, ENV)
    try:
        async with client(ca) as http:
            async def status(route: str) -> int:
                async with http.get(f"https://127.0.0.1:{port}{route}") as resp:
                    return resp.status

            async def serves(route: str) -> bool:
                return await status(route) == 200

            assert await status("/v1/old") == 200
            replace(path, config(tmp_path, server_cert, upstream[0], port, "/v2/renamed"))  # atomic rename
            await until(lambda: serves("/v2/renamed"), "the renamed-in file's route")
            assert await status("/v1/old") == 404
            with path.open("w") as fh:  # in place: truncated, then written
                fh.write(config(tmp_path, server_cert, upstream[0], port, "/v3/in-place"))
            await until(lambda: serves("/v3/in-place"), "the route written in place")
            assert await status("/v2/renamed") == 404
            # (a look between the in-place write's truncation and its text, on a loaded machine, may
            # have been refused already: the broken file's refusal is the next one)
            earlier = refusals(running)
            path.write_text("routes: [unclosed")
            await running.wait_log("config reload refused", count=len(earlier) + 1)
            assert await status("/v3/in-place") == 200  # the running configuration stays
            replace(path, config(tmp_path, server_cert, upstream[0], port, "/v4/fixed"))
            await until(lambda: serves("/v4/fixed"), "the fixed file's route")
        assert "invalid YAML" in str(refusals(running)[len(earlier)]["problems"])
        assert sum(str(e.get("msg")) == "config reloaded" for e in running.lines) == 3
        assert not any(e.get("level") in ("error", "ERROR") and "refused" not in str(e.get("msg")) for e in running.lines)
        assert await running.stop() == 0
    finally:
        await running.kill()


async def test_each_worker_watches_and_reloads_itself(tmp_path: Path, server_cert, upstream, ca) -> None:
    require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
    port = free_port()
    path = tmp_path / "gateway.yaml"
    redis, channel = own_redis_names()

    def text(route: str) -> str:
        cfg = yaml.safe_load(config(tmp_path, server_cert, upstream[0], port, route, workers=2))
        return yaml.safe_dump({**cfg, "ratelimit": redis, "store": {**cfg.get("store", {}), **channel}})

    path.write_text(text("/v1/old"))
    running: GatewayProcess = await start_gateway_process(path, tmp_path, ENV, workers=2)
    try:
        replace(path, text("/v2/new"))
        await running.wait_log("config reloaded", count=2)  # one line per worker
        assert await statuses(ca, port, "/v2/new") == [200] * 40  # fresh connections: both workers answer
        assert await running.stop() == 0
    finally:
        await running.kill()


async def test_sighup_to_the_supervisor_reloads_every_worker(tmp_path: Path, server_cert, upstream, ca) -> None:
    """The pid an operator sees is the supervisor's: SIGHUP there reaches each worker (it used to
    end the supervisor, SIGHUP's default action)."""
    require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
    port = free_port()
    path = tmp_path / "gateway.yaml"
    redis, channel = own_redis_names()

    def text(route: str) -> str:
        cfg = yaml.safe_load(config(tmp_path, server_cert, upstream[0], port, route, workers=2, watch_config=False))
        return yaml.safe_dump({**cfg, "ratelimit": redis, "store": {**cfg.get("store", {}), **channel}})

    path.write_text(text("/v1/old"))
    running = await start_gateway_process(path, tmp_path, ENV, workers=2)
    try:
        path.write_text(text("/v2/new"))
        running.signal(signal.SIGHUP)
        await running.wait_log("config reloaded", count=2)
        assert await statuses(ca, port, "/v2/new") == [200] * 40  # fresh connections: both workers answer
        assert running.proc.returncode is None
        assert await running.stop() == 0
    finally:
        await running.kill()


async def test_admin_reload_reaching_one_worker_reloads_every_worker(
    tmp_path: Path, server_cert, upstream, ca
) -> None:
    require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
    port, admin_port = free_port(), free_port()
    path = tmp_path / "gateway.yaml"
    redis, channel = own_redis_names()

    def text(route: str) -> str:
        cfg = yaml.safe_load(config(tmp_path, server_cert, upstream[0], port, route, workers=2, watch_config=False))
        return yaml.safe_dump({**cfg, "ratelimit": redis, "store": {**cfg.get("store", {}), **channel},
                               "admin": {"host": "127.0.0.1", "port": admin_port}})

    path.write_text(text("/v1/old"))
    running = await start_gateway_process(path, tmp_path, ENV, workers=2)
    try:
        path.write_text(text("/v2/new"))
        async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
                    admin.post(f"http://127.0.0.1:{admin_port}/admin/reload") as resp):
            assert resp.status == 200
        # the answering worker (for the request, then on SIGHUP) and the other one (on SIGHUP)
        await running.wait_log("config reloaded", count=3)
        assert await statuses(ca, port, "/v2/new") == [200] * 40  # fresh connections: both workers answer
        assert await running.stop() == 0
    finally:
        await running.kill()
