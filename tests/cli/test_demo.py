"""`gateway demo` as a newcomer meets it: the printed curl commands work as printed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.test_run import ENV, free_port


def test_demo_prints_curl_commands_that_work(tmp_path: Path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--dir", str(tmp_path / "demo"),
         "--port", ports[0], "--admin-port", ports[1], "--upstream-port", ports[2]],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in ENV.items() if k != "GATEWAY_ADMIN_TOKEN"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Key console"):
                break
        commands = [x.strip().split("  #")[0] for x in lines if x.strip().startswith("curl ")]
        assert len(commands) >= 4, lines

        def run(command: str) -> tuple[int, dict]:
            out = subprocess.run(
                ["bash", "-c", command + " -s -w '\\n%{http_code}'"], capture_output=True, text=True, timeout=20
            )
            body, _, status = out.stdout.rpartition("\n")
            return int(status), json.loads(body)

        status, body = run(commands[0])
        assert status == 200
        assert body["gateway_headers"]["X-Gateway-Tenant"] == "demo"
        status, body = run(commands[1])
        assert status == 200 and body["query"] == "page=2"
        status, body = run(commands[2])
        assert status == 401 and body["error"]["code"] == "MISSING_CREDENTIALS"
        status, body = run(commands[3])
        assert status == 200
        status, body = run(commands[4])  # the token exchange, then the token through the proxy
        assert status == 200 and body["token_type"] == "Bearer"
        status, body = run(commands[0].split(" -H ")[0] + f" -H 'Authorization: Bearer {body['token']}' "
                           + commands[0].rsplit(" ", 1)[1])
        assert status == 200 and body["gateway_headers"]["X-Gateway-Auth-Method"] == "jwt"
        status, body = run(commands[5])
        assert status == 200 and body["meta"]["total"] == 1
        metrics = subprocess.run(["bash", "-c", commands[6]], capture_output=True, text=True, timeout=20).stdout
        assert "gateway_requests_total" in metrics
        console = next(x for x in lines if "Key console" in x).split("open ")[1].split(" ")[0]
        page = subprocess.run(["curl", "-s", console], capture_output=True, text=True, timeout=20).stdout
        assert "<title>gateway console</title>" in page
        invitation = proc.stdout.readline().split("open ")[1].split(" ")[0]  # the line after the console's
        assert "/portal/#invitation=" in invitation
        portal = commands[3].split(" https://")[0] + " " + invitation.split("#")[0]  # curl --cacert <the demo's cert>
        page = subprocess.run(["bash", "-c", portal + " -s"], capture_output=True, text=True, timeout=20).stdout
        assert "<title>API access</title>" in page
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


def test_restarting_the_demo_keeps_the_keys_people_made(tmp_path: Path) -> None:
    """Each run prints a new key and makes room for it from earlier runs' keys, not from one made
    in the demo's console or portal (the tenant allows `keys.max_per_tenant`, 4, active keys)."""
    ports = [str(free_port()) for _ in range(3)]
    token = "walk-" + "t" * 30
    admin = f"http://127.0.0.1:{ports[1]}/admin/keys"
    auth = ["-H", f"Authorization: Bearer {token}"]

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "demo", "--dir", str(tmp_path / "demo"),
             "--port", ports[0], "--admin-port", ports[1], "--upstream-port", ports[2]],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**ENV, "GATEWAY_ADMIN_TOKEN": token})
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Tenant portal"):
                return proc
        raise AssertionError(f"the demo stopped: {proc.wait()}")

    def stop(proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0

    proc = start()
    try:
        made = subprocess.run(["curl", "-s", *auth, "-H", "Content-Type: application/json",
                               "-d", '{"tenant_id": "demo", "name": "my key", "scope": "read_only"}', admin],
                              capture_output=True, text=True, timeout=20).stdout
        assert '"id"' in made, made
        mine = json.loads(made)["id"]
    finally:
        stop(proc)
    for _ in range(3):
        stop(start())
    proc = start()
    try:
        listed = subprocess.run(["curl", "-s", *auth, admin + "?tenant_id=demo&status=active"],
                                capture_output=True, text=True, timeout=20).stdout
    finally:
        stop(proc)
    active = json.loads(listed)["data"]
    assert mine in {key["id"] for key in active}, active
    assert len(active) == 4
