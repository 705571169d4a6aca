"""The portal's private Unix socket under a `TMPDIR` too long for a socket's path (a Unix socket's
path holds at most 107 bytes on Linux): `gateway run` still serves the portal, its directory stays
in that `TMPDIR`, private, and is gone after a stop; the sweep of dead processes' directories still
tells a listened-on socket from a dead one there."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.portal import socket_dir
from gateway.portal.socket_dir import SOCKET_NAME, make_socket_dir, sweep_stale
from tests.cli.test_run import ENV, free_port
from tests.conftest import base_config
from tests.portal.test_workers import _dead_pid
from tests.processes import start_gateway_process


@pytest.fixture
def long_tmp(tmp_path: Path) -> Path:
    tmp = tmp_path / ("t" * 90) / ("u" * 90)
    tmp.mkdir(parents=True)
    assert len(str(tmp / "gateway-portal-123456-abcdefgh" / SOCKET_NAME)) > 107
    return tmp


def portal_dirs(tmp: Path) -> list[Path]:
    return [entry for entry in tmp.iterdir() if entry.name.startswith("gateway-portal-")]


async def test_the_portal_is_served_under_a_long_tmpdir(tmp_path: Path, long_tmp: Path, server_cert: Any,
                                                        ca: Any) -> None:
    port = free_port()
    cfg = base_config(tmp_path, server_cert, server={"port": port}, portal={"enabled": True})
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(cfg))
    running = await start_gateway_process(path, tmp_path, {**ENV, "TMPDIR": str(long_tmp)})
    try:
        [folder] = portal_dirs(long_tmp)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and (folder / SOCKET_NAME).is_socket()
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
            async with http.get(f"https://127.0.0.1:{port}/portal/") as resp:
                assert resp.status == 200 and resp.content_type == "text/html"
            async with http.get(f"https://127.0.0.1:{port}/portal/api/me") as resp:  # the portal's own answer
                assert resp.status == 401 and (await resp.json())["error"]["code"] == "MISSING_CREDENTIALS"
        assert await running.stop() == 0
        assert portal_dirs(long_tmp) == []
    finally:
        await running.kill()


def test_a_socket_dir_in_a_long_tmpdir_is_private_and_reachable(long_tmp: Path) -> None:
    made = make_socket_dir(str(long_tmp))
    try:
        assert Path(made.folder).parent == long_tmp and stat.S_IMODE(os.stat(made.folder).st_mode) == 0o700
        assert len(made.path) <= socket_dir.MAX_PATH
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(made.path)
            server.listen()
            assert (Path(made.folder) / SOCKET_NAME).is_socket()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(made.path)
    finally:
        made.remove()
    assert not Path(made.folder).exists()


def test_without_proc_the_socket_dir_goes_to_a_short_directory(long_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where `/proc/self/fd` is missing (macOS): a short temporary directory, `/tmp`."""
    monkeypatch.setattr(socket_dir, "_FD_DIR", str(long_tmp / "no-proc"))
    made = make_socket_dir(str(long_tmp))
    try:
        assert Path(made.folder).parent == Path("/tmp") and made.path == os.path.join(made.folder, SOCKET_NAME)
        assert stat.S_IMODE(os.stat(made.folder).st_mode) == 0o700 and portal_dirs(long_tmp) == []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(made.path)
    finally:
        made.remove()


def test_the_sweep_tells_a_listened_socket_from_a_dead_one_under_a_long_tmpdir(long_tmp: Path) -> None:
    gone = _dead_pid()
    dead = long_tmp / f"gateway-portal-{gone}-dead"
    dead.mkdir()
    (dead / SOCKET_NAME).touch()
    listened = long_tmp / f"gateway-portal-{gone}-listened"  # e.g. a process of another pid namespace
    listened.mkdir()
    fd = os.open(listened, os.O_RDONLY | os.O_DIRECTORY)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(f"/proc/self/fd/{fd}/{SOCKET_NAME}")
        listener.listen()
        sweep_stale(str(long_tmp))
    finally:
        listener.close()
        os.close(fd)
    assert portal_dirs(long_tmp) == [listened]
