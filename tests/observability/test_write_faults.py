"""The SQLite file refusing writes: locked by another process, read-only, full. Requests keep
flowing, the refusal is logged once and counted, /readyz says so, entries wait in memory (or are
counted as dropped when the buffer is full), and everything is written once the fault clears."""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import ADMIN_TOKEN, STORE_BACKEND, admin_url

pytestmark = pytest.mark.skipif(STORE_BACKEND != "sqlite", reason="faults of the SQLite file")

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # holds the write lock, as a stuck CLI or another worker would
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lock_database() -> Iterator[Any]:
    lockers: list[subprocess.Popen[str]] = []

    def lock(path: str) -> subprocess.Popen[str]:
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        lockers.append(locker)
        return locker

    yield lock
    for locker in lockers:
        release(locker)


def release(locker: subprocess.Popen[str]) -> None:
    if locker.poll() is None:
        assert locker.stdin is not None
        locker.stdin.close()
        locker.wait(10)


async def admin(method: str, gw: Any, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession() as client, client.request(
        method, admin_url(gw, path), json=body, headers=headers
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def metric(gw: Any, name: str) -> float:
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/metrics")) as resp:
        text = await resp.text()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


def call_log_rows(path: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM call_log").fetchone()[0])


async def readiness(gw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client, client.get(admin_url(gw, "/readyz")) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_a_database_locked_by_another_process(start_gateway, upstream, https, lock_database, caplog,
                                                    writer: str) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), store={"busy_timeout": 0.2},
                             call_log={"flush_interval": 3600, "writer": writer})
    assert (gw.recorder.writer is not None) == (writer == "process")
    path = gw.cfg.store.sqlite_path
    _, known = await tenant_and_key(gw)
    _, unseen = await tenant_and_key(gw)
    assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": known}))[0] == 200
    assert await gw.recorder.call_buffer.flush() and await gw.recorder.audit_buffer.flush()
    before = call_log_rows(path)

    locker = lock_database(path)
    with caplog.at_level(logging.WARNING, logger="gateway.records"):
        for _ in range(3):
            assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": known}))[0] == 200
        # WAL: reads go on under another writer's lock, so a key not seen yet still works
        assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": unseen}))[0] == 200
        for _ in range(3):
            assert not await gw.recorder.call_buffer.flush()
    warnings = [r for r in caplog.records if r.name == "gateway.records" and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once per outage, not once per retry
    assert await metric(gw, "gateway_call_log_flush_failures_total") >= 3
    assert await metric(gw, "gateway_call_log_queue_depth") == 4
    status, ready = await readiness(gw)
    assert status == 503 and any(d["field"] == "records" for d in ready["error"]["details"])
    status, body = await admin("POST", gw, "/admin/keys", {"tenant_id": "acme", "name": "during", "scope": "read_only"})
    assert (status, body["error"]["code"]) == (503, "STORE_UNAVAILABLE")

    release(locker)
    assert await gw.recorder.call_buffer.flush()
    assert call_log_rows(path) == before + 4  # nothing that waited in memory was lost
    assert (await readiness(gw))[0] == 200
    status, _ = await admin("POST", gw, "/admin/keys", {"tenant_id": "acme", "name": "after", "scope": "read_only"})
    assert status == 201


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
async def test_a_full_or_read_only_database_loses_only_what_it_counts(start_gateway, upstream, https, fault) -> None:
    gw = await start_gateway(routes=routes(upstream[0]),  # the thread: faults set on the store's own connection
                             call_log={"flush_interval": 3600, "buffer_size": 20, "writer": "thread"})
    path = gw.cfg.store.sqlite_path
    _, key = await tenant_and_key(gw)
    assert await gw.recorder.call_buffer.flush() and await gw.recorder.audit_buffer.flush()
    before = call_log_rows(path)
    db = gw.recorder.store._db  # the record writer's own connection: SQLite's real refusals
    if fault == "disk full":
        async with db.execute("PRAGMA page_count") as cur:
            pages = (await cur.fetchone())[0]
        await db.execute(f"PRAGMA max_page_count={pages}")  # no page can be added: SQLITE_FULL
    else:
        await db.execute("PRAGMA query_only=ON")  # every write: SQLITE_READONLY

    long_path = "/api/v1/visitors/" + "x" * 3000  # 20 such rows need pages the file does not have
    for _ in range(30):  # 30 overflow a buffer of 20
        assert (await call(https, gw, long_path, **{"X-API-Key": key}))[0] == 200
    assert not await gw.recorder.call_buffer.flush()
    assert gw.recorder.call_buffer.last_error
    assert await metric(gw, "gateway_call_log_dropped_total") == 10
    assert (await readiness(gw))[0] == 503

    if fault == "disk full":
        await db.execute("PRAGMA max_page_count=1073741823")
    else:
        await db.execute("PRAGMA query_only=OFF")
    assert await gw.recorder.call_buffer.flush()
    assert call_log_rows(path) == before + 20  # the 20 it could hold, all written; 10 counted as lost
    status, ready = await readiness(gw)
    assert status == 200, ready
    await gw.stop()  # the gateway survived it all: a clean stop
    assert Path(path).exists()

