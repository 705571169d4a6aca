"""`gateway run` with the call log's writer process (`call_log.writer: process`): one writer per
worker, every row written by a graceful stop and no writer left behind; SIGKILL of the gateway
ends its writer too, after the batches it had confirmed (and any it had already received)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import ssl
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.cli.test_run import ENV, free_port, write_config
from tests.conftest import ADMIN_TOKEN, STORE_BACKEND, base_config, require_service
from tests.processes import GatewayProcess, ended, start_gateway_process, writers
from tests.ratelimit.test_limiters import redis_reachable

pytestmark = pytest.mark.skipif(STORE_BACKEND != "sqlite", reason="the writer process writes SQLite")


def call_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT count(*) FROM call_log").fetchone()[0])


async def serve(port: int, ca, count: int) -> list[int]:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=20)) as client:
        async def one() -> int:
            async with client.get(f"https://127.0.0.1:{port}/open") as resp:
                await resp.read()
                return resp.status

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_two_workers_each_have_a_writer_and_a_stop_writes_every_row(tmp_path: Path, server_cert, upstream,
                                                                          ca) -> None:
    require_service("redis", redis_reachable(), "nothing answers on 127.0.0.1:6379")
    port = free_port()
    db_path = tmp_path / "data" / "gateway.db"
    cfg = base_config(tmp_path, server_cert, server={"port": port, "workers": 2},
                      store={"url": f"sqlite:///{db_path}"}, call_log={"writer": "process"},
                      ratelimit={"backend": "redis", "redis_prefix": f"gwtest:{uuid.uuid4().hex}:"},
                      routes=[{"name": "open", "path": "/open", "upstream": upstream[0], "auth": []}])
    running = await start_gateway_process(write_config(tmp_path, cfg), tmp_path, ENV, workers=2)
    try:
        assert await serve(port, ca, 300) == [200] * 300
        before = writers(running.proc.pid)
        assert len(before) == 2  # one per worker
        said = [e for e in running.lines if e.get("msg") == "call log writer"]
        assert [(e["writer"], e["configured"]) for e in said] == [("process", "process")] * 2
        assert await running.stop() == 0
        for pid in before:
            await ended(pid)  # none outlives the stop
    finally:
        await running.kill()
    assert call_rows(db_path) == 300


async def test_sigkill_of_the_gateway_ends_its_writer_and_keeps_the_confirmed_rows(tmp_path: Path, server_cert,
                                                                                   upstream, ca) -> None:
    port, admin_port = free_port(), free_port()
    db_path = tmp_path / "data" / "gateway.db"
    cfg = base_config(tmp_path, server_cert, server={"port": port}, admin={"port": admin_port},
                      store={"url": f"sqlite:///{db_path}"}, call_log={"writer": "process"},
                      routes=[{"name": "open", "path": "/open", "upstream": upstream[0], "auth": []}])
    running: GatewayProcess = await start_gateway_process(write_config(tmp_path, cfg), tmp_path, ENV)
    try:
        assert await serve(port, ca, 40) == [200] * 40
        async with aiohttp.ClientSession() as client, client.get(
            f"http://127.0.0.1:{admin_port}/admin/calls?limit=100", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as resp:  # an admin read waits for what was served to be written
            assert resp.status == 200 and len((await resp.json())["data"]) == 40
        (writer,) = writers(running.proc.pid)
        running.proc.send_signal(signal.SIGKILL)  # the gateway alone, as the OOM killer would
        await running.proc.wait()
        await ended(writer)  # its input ended: it exits by itself, no writer left behind
    finally:
        await running.kill()
    assert call_rows(db_path) == 40
