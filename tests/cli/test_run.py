"""The `gateway` command as an operator meets it: real processes, real ports, exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests import services
from tests.conftest import ADMIN_TOKEN, base_config
from tests.processes import start_gateway_process

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}


def write_config(tmp_path: Path, cfg: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def gateway(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def free_port() -> int:
    return services.free_port()  # below the ephemeral range: see there why


def test_check_config_accepts_examples() -> None:
    for name in ("gateway.yaml", "demo.yaml"):
        result = gateway("check-config", "--config", str(ROOT / "config" / name), cwd=ROOT)
        assert result.returncode == 0, result.stderr
        assert "ok" in result.stdout


def test_check_config_reports_every_problem_with_field_paths(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "server:\n  port: 99999\n  tls: {self_signed: true}\n  colour: red\n"
        "routes:\n  - {name: a, path: /a, upstream: http://127.0.0.1:1}\n"
        "  - {name: b, path: /b, upstream: ftp://nope}\n"
    )
    result = gateway("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("server.port:") for line in lines)
    assert any(line.startswith("server.colour:") for line in lines)
    assert any(line.startswith("routes[1].upstream:") for line in lines)
    assert "Traceback" not in result.stderr


def test_run_with_port_in_use_is_one_line_and_exit_2(tmp_path: Path, server_cert) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = base_config(tmp_path, server_cert, server={"port": port})
        result = gateway("run", "--config", str(write_config(tmp_path, cfg)), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr


def test_run_with_missing_certificate_is_one_line_and_exit_2(tmp_path: Path, server_cert) -> None:
    cfg = base_config(tmp_path, server_cert, server={"tls": {"cert_file": "nope.crt", "key_file": "nope.key"}})
    result = gateway("run", "--config", str(write_config(tmp_path, cfg)), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.crt" in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


async def test_run_serves_self_signed_https_and_stops_cleanly_on_sigterm(tmp_path: Path, server_cert, upstream) -> None:
    url, state = upstream
    proxy_port, admin_port = free_port(), free_port()
    cfg = base_config(
        tmp_path,
        server_cert,
        server={"port": proxy_port, "tls": {"self_signed": True}},
        admin={"port": admin_port},
        routes=[{"name": "api", "path": "/api", "upstream": url, "auth": []}],
    )
    running = await start_gateway_process(write_config(tmp_path, cfg), tmp_path, ENV)
    try:
        cert = Path(cfg["data_dir"]) / "tls" / "self-signed.crt"
        ctx = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as client:
            async with client.get(f"https://localhost:{proxy_port}/api/x") as resp:
                assert resp.status == 200
            async with client.get(f"http://127.0.0.1:{admin_port}/healthz") as resp:
                assert resp.status == 200
        assert await running.stop() == 0
        assert running.lines[-1]["msg"] == "gateway stopped"
    finally:
        await running.kill()


async def test_echo_upstream_command_answers_with_what_it_received(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "echo", "--port", str(port), cwd=tmp_path, env=ENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert b"listening" in line, line
        async with (aiohttp.ClientSession() as client,
                    client.post(f"http://127.0.0.1:{port}/x?y=1", data=b"abc", headers={"X-Probe": "1"}) as resp):
            body = await resp.json()
        assert body["path"] == "/x" and body["query"] == "y=1" and body["body_bytes"] == 3
        assert body["gateway_headers"]["X-Probe"] == "1"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
