"""The portal in `gateway run` with `server.workers: 2`: a session made on one worker works on the
other (sessions live in the store), and a worker killed with SIGKILL leaves no socket directory
behind once the gateway starts again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.portal.socket_dir import sweep_stale
from tests.cli.test_run import ENV, free_port
from tests.conftest import ADMIN_TOKEN, base_config
from tests.portal.harness import PASSWORD, token_of
from tests.processes import GatewayProcess, start_gateway_process
from tests.services import REDIS, drop_schema, postgres_url, require_postgres, require_redis

OWNER = "owner@acme.example"


@pytest.fixture
async def two_workers(tmp_path: Path, server_cert, upstream) -> AsyncIterator[tuple[Any, ...]]:
    require_postgres()
    require_redis()
    tag = uuid.uuid4().hex[:8]
    port, admin = free_port(), free_port()
    cfg = base_config(tmp_path, server_cert, server={"port": port, "workers": 2}, admin={"port": admin},
                      store={"url": postgres_url(tmp_path), "invalidation_channel": f"gwtest:{tag}:inv"},
                      ratelimit={"backend": "redis", "redis_url": REDIS, "redis_prefix": f"gwtest:{tag}:"},
                      portal={"enabled": True}, routes=[{"name": "api", "path": "/api", "upstream": upstream[0]}])
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(cfg))
    # the processes' temporary directory (TMPDIR), watched by the test; short, as a socket's path must be
    tmp = Path(tempfile.mkdtemp(prefix="gwt-", dir="/tmp"))
    env = {**ENV, "TMPDIR": str(tmp)}
    started: list[GatewayProcess] = []

    async def start() -> GatewayProcess:
        running = await start_gateway_process(path, tmp_path, env, workers=2)
        started.append(running)
        return running

    try:
        yield start, tmp, port, admin
    finally:
        for running in started:
            await running.kill()
        await drop_schema(postgres_url(tmp_path))
        shutil.rmtree(tmp, ignore_errors=True)


def socket_dirs(tmp: Path) -> set[str]:
    return {entry.name for entry in tmp.iterdir() if entry.name.startswith("gateway-portal-")}


def workers_of(supervisor: int) -> list[int]:
    """The worker processes (spawned; not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


async def test_a_session_works_on_either_worker(two_workers, ca) -> None:
    start, tmp, port, admin = two_workers
    await start()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as operator:
        for path, body in (("/admin/tenants", {"id": "acme", "name": "Acme", "plan": "starter"}),
                           ("/admin/tenants/acme/invitations", {"email": OWNER, "role": "owner"})):
            async with operator.post(f"http://127.0.0.1:{admin}{path}", json=body) as resp:
                assert resp.status == 201, await resp.text()
                invited = await resp.json()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    base = f"https://127.0.0.1:{port}/portal/api"
    origin = {"Origin": f"https://127.0.0.1:{port}"}
    # a new connection per request: the kernel spreads them over the workers (SO_REUSEPORT)
    connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{base}/invitations/{token_of(invited['invitation_url'])}/accept",
                                json={"password": PASSWORD}, headers=origin) as resp:
            assert resp.status == 200, await resp.text()
        async with browser.post(f"{base}/session", json={"email": OWNER, "password": PASSWORD}, headers=origin) as resp:
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
            signed_in_on = resp.headers["X-Request-Id"][:16]  # each process's request ids share a prefix
        answered_by = set()
        for i in range(40):
            if i % 4 == 0:  # a change, with the session's CSRF token
                async with browser.post(f"{base}/keys", json={"name": f"k{i}", "scope": "read_only"},
                                        headers={**origin, "X-CSRF-Token": csrf}) as resp:
                    assert resp.status == 201, await resp.text()
            else:
                async with browser.get(f"{base}/me") as resp:
                    assert resp.status == 200, await resp.text()
                    assert (await resp.json())["user"]["email"] == OWNER
            answered_by.add(resp.headers["X-Request-Id"][:16])
            if len(answered_by) == 2 and i >= 8:
                break
        assert len(answered_by) == 2 and signed_in_on in answered_by, answered_by
        async with browser.get(f"{base}/keys?per_page=100") as resp:
            assert resp.status == 200 and (await resp.json())["meta"]["total"] >= 3


async def test_a_worker_killed_with_sigkill_leaves_no_socket_directory_behind(two_workers) -> None:
    start, tmp, _, _ = two_workers
    first = await start()
    dirs = socket_dirs(tmp)
    assert len(dirs) == 2 and all((tmp / d / "portal.sock").exists() for d in dirs), dirs
    workers = workers_of(first.proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)  # the supervisor stops the other worker and exits
    assert await first.stop() != 0
    stale = socket_dirs(tmp)
    assert len(stale) == 1, stale  # the killed worker's: it never ran its cleanup
    second = await start()
    now = socket_dirs(tmp)
    assert len(now) == 2 and not now & stale, (stale, now)
    assert await second.stop() == 0
    assert socket_dirs(tmp) == set()


def test_the_sweep_removes_only_this_users_dead_and_silent_socket_directories() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gwt-", dir="/tmp"))
    try:
        gone = _dead_pid()
        dead = tmp / f"gateway-portal-{gone}-dead"
        dead.mkdir()
        (dead / "portal.sock").touch()
        listened = tmp / f"gateway-portal-{gone}-listened"  # e.g. a process of another pid namespace
        listened.mkdir()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(listened / "portal.sock"))
        listener.listen()
        mine = tmp / f"gateway-portal-{os.getpid()}-mine"
        mine.mkdir()
        (tmp / "elsewhere").mkdir()
        (tmp / f"gateway-portal-{gone}-link").symlink_to(tmp / "elsewhere")
        (tmp / "gateway-portal-old").mkdir()  # no pid: not told apart, left alone
        try:
            sweep_stale(str(tmp))
        finally:
            listener.close()
        assert sorted(p.name for p in tmp.iterdir()) == sorted(
            ["elsewhere", f"gateway-portal-{gone}-link", f"gateway-portal-{gone}-listened", mine.name, "gateway-portal-old"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
