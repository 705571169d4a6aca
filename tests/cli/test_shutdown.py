"""SIGTERM under load: every in-flight request completes, every call-log row is written (by either
call-log writer), exit 0, no writer process left."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.cli.test_run import ENV, free_port, write_config
from tests.conftest import base_config
from tests.processes import ended, start_gateway_process, writers

IN_FLIGHT = 200


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_sigterm_with_hundreds_in_flight_loses_nothing(tmp_path: Path, server_cert, upstream, ca,
                                                             writer: str) -> None:
    url, state = upstream
    port = free_port()
    cfg = base_config(tmp_path, server_cert, server={"port": port, "grace_period": 60},
                      store={"url": f"sqlite:///{tmp_path}/data/gateway.db"}, call_log={"writer": writer},
                      routes=[{"name": "slow", "path": "/slow", "upstream": url, "auth": []}])
    path = write_config(tmp_path, cfg)
    running = await start_gateway_process(path, tmp_path, ENV)
    try:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=0)) as client:
            async def one() -> int:
                async with client.get(f"https://127.0.0.1:{port}/slow") as resp:
                    await resp.read()
                    return resp.status

            requests = [asyncio.ensure_future(one()) for _ in range(IN_FLIGHT)]
            # 200 TLS handshakes with one process: many seconds on a loaded 2-core machine
            await asyncio.wait_for(state.wait_slow(IN_FLIGHT), 120)
            started = writers(running.proc.pid)
            assert len(started) == (writer == "process")
            running.signal(signal.SIGTERM)
            await running.wait_log("gateway stopping")
            state.release.set()  # the upstream answers only once the gateway is draining
            statuses = await asyncio.wait_for(asyncio.gather(*requests), 120)
        assert statuses == [200] * IN_FLIGHT
        assert await running.stop() == 0
        for pid in started:
            await ended(pid, timeout=1)  # the gateway waited for it: gone already
        assert sum(e.get("logger") == "gateway.access" for e in running.lines) == IN_FLIGHT
    finally:
        await running.kill()
    db = sqlite3.connect(tmp_path / "data" / "gateway.db")
    rows = db.execute("SELECT COUNT(*), MIN(status), MAX(status) FROM call_log WHERE route = 'slow'").fetchone()
    db.close()
    assert rows == (IN_FLIGHT, 200, 200)
