"""SIGKILL under load, with admin changes in flight: on restart the SQLite file is consistent,
every acknowledged key change holds, and the call log, audit trail and last-used times lose at
most what arrived in the last flush interval (the bound the README documents)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.cli.test_run import ENV, free_port, write_config
from tests.conftest import ADMIN_TOKEN, base_config
from tests.processes import start_gateway_process

FLUSH = 0.2   # call_log.flush_interval and store.last_used_flush_interval in this test
MARGIN = 1.5  # how much older than the kill an acknowledged event must be to be required on disk


async def test_sigkill_under_load_leaves_a_consistent_store_and_loses_at_most_a_flush_interval(
    tmp_path: Path, server_cert, upstream, ca
) -> None:
    url, _ = upstream
    port, admin_port = free_port(), free_port()
    db_path = tmp_path / "data" / "gateway.db"
    cfg = base_config(tmp_path, server_cert, server={"port": port}, admin={"port": admin_port},
                      store={"url": f"sqlite:///{db_path}", "last_used_flush_interval": FLUSH},
                      call_log={"flush_interval": FLUSH},
                      plans={"starter": {"requests_per_minute": 1_000_000}},
                      routes=[{"name": "visitors", "path": "/api/v1/visitors", "upstream": url}])
    config = write_config(tmp_path, cfg)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    admin_base = f"http://127.0.0.1:{admin_port}"

    running = await start_gateway_process(config, tmp_path, ENV)
    served: list[tuple[float, str]] = []      # (when acknowledged, request id)
    changes: list[tuple[float, str, str]] = []  # (when acknowledged, action, key id)
    used: dict[str, float] = {}               # key id -> last acknowledged use
    alive: dict[str, str] = {}                # key id -> secret, for keys created and not revoked
    revoked: set[str] = set()
    workers: list[asyncio.Future[None]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=0)) as client:
            async def admin(method: str, path: str, body: Any = None) -> Any:
                async with client.request(method, admin_base + path, json=body, headers=admin_headers) as resp:
                    assert resp.status in (200, 201), await resp.text()
                    return await resp.json()

            await admin("POST", "/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"})
            await admin("POST", "/admin/tenants", {"id": "churn", "name": "Churn", "plan": "starter"})
            for i in range(3):
                key = await admin("POST", "/admin/keys", {"tenant_id": "acme", "name": f"k{i}", "scope": "read_write"})
                alive[key["id"]] = key["key"]

            async def traffic() -> None:
                while True:
                    for key_id, secret in list(alive.items()):
                        async with client.get(f"https://127.0.0.1:{port}/api/v1/visitors",
                                              headers={"X-API-Key": secret}) as resp:
                            await resp.read()
                            if resp.status == 200:
                                now = time.monotonic()
                                served.append((now, resp.headers["X-Request-Id"]))
                                used[key_id] = now

            async def churn() -> None:
                n = 0
                while True:
                    n += 1
                    key = await admin("POST", "/admin/keys", {"tenant_id": "churn", "name": f"c{n}", "scope": "read_only"})
                    changes.append((time.monotonic(), "key.created", key["id"]))
                    await admin("POST", f"/admin/keys/{key['id']}/revoke")
                    changes.append((time.monotonic(), "key.revoked", key["id"]))
                    revoked.add(key["id"])

            workers += [asyncio.ensure_future(traffic()) for _ in range(16)] + [asyncio.ensure_future(churn())]
            started = time.monotonic()
            while time.monotonic() - started < MARGIN + 2.5 or len(served) < 1000:  # then pull the plug
                await asyncio.wait(workers, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
                for worker in workers:
                    if worker.done():
                        worker.result()  # a worker that failed fails the test now
            running.signal(signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.wait_for(running.proc.wait(), 10)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await running.kill()
    assert running.proc.returncode == -signal.SIGKILL

    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        logged = {row[0] for row in db.execute("SELECT request_id FROM call_log")}
        audited = set(db.execute("SELECT action, target_id FROM audit_log").fetchall())
        statuses = dict(db.execute("SELECT id, revoked_at IS NOT NULL FROM api_keys").fetchall())
        last_used = {row[0] for row in db.execute("SELECT id FROM api_keys WHERE last_used_at IS NOT NULL")}

    old = killed - MARGIN
    required_calls = {rid for at, rid in served if at < old}
    required_audit = {(action, key_id) for at, action, key_id in changes if at < old}
    assert len(required_calls) > 500 and len(required_audit) > 10  # the test saw real load
    assert required_calls <= logged
    assert required_audit <= audited
    assert {key_id for key_id, at in used.items() if at < old} <= last_used
    # key changes are acknowledged only once committed: every one of them survived, however recent
    assert all(statuses[key_id] for key_id in revoked)
    assert not any(statuses[key_id] for key_id in alive)

    running = await start_gateway_process(config, tmp_path, ENV)  # restarts on the same file
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as client:
            for secret in alive.values():
                async with client.get(f"https://127.0.0.1:{port}/api/v1/visitors",
                                      headers={"X-API-Key": secret}) as resp:
                    assert resp.status == 200
        assert await running.stop() == 0
    finally:
        await running.kill()
