"""README's "Running it for real", run as printed: its shell blocks are read from the README, so the
steps cannot drift from what this test tries.

Like a user in a fresh clone: a directory holding the repository's `config/`, the `gateway`
command on PATH, one shell whose exported variables carry from line to line, lines ending in `&`
left running, curl with the generated certificate. The only change to what is printed: the
quickstart's three ports become free ones (tests run side by side) and `gw_live_…` becomes the key
`keys create` printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from gateway.cli import build_parser
from tests.cli.test_run import ROOT, free_port
from tests.processes import GatewayProcess

SECTION = "## Running it for real"


def readme_section() -> str:
    return (ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]


def readme_blocks() -> list[list[str]]:
    """The section's ```sh blocks, each a list of command lines (comments kept: bash drops them)."""
    blocks = re.findall(r"```sh\n(.*?)```", readme_section(), re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def demo_ports() -> set[int]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    demo = sub.choices["demo"]  # type: ignore[attr-defined]
    return {a.default for a in demo._actions if a.dest in ("port", "admin_port", "upstream_port")}


class Shell:
    """Runs lines as one interactive shell would: `export` carries on, `&` keeps running."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.background: list[GatewayProcess] = []

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        dump = self.cwd / ".env-after"
        script = f"set -eo pipefail\n{line}\nenv -0 > {shlex.quote(str(dump))}\n"
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, f"{line!r} failed: {done.stdout}{done.stderr}"
        self.env = dict(item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
        return done

    async def start(self, line: str, ready: str) -> GatewayProcess:
        command = line.split("#", 1)[0].strip()
        assert command.endswith("&"), line
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", "exec " + command[:-1], cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        running = GatewayProcess(proc)
        self.background.append(running)
        await running.wait_log(ready)
        return running


async def test_running_it_for_real_works_as_printed(tmp_path: Path) -> None:
    setup, serve, use = readme_blocks()
    quickstart = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    printed = [quickstart["server"]["port"], quickstart["admin"]["port"],
               int(quickstart["routes"][0]["upstream"].rsplit(":", 1)[1])]
    assert not set(printed) & demo_ports(), "the quickstart must not need the demo's ports"
    free = [free_port() for _ in printed]

    def local(text: str) -> str:
        for old, new in zip(printed, free, strict=True):
            text = re.sub(rf"\b{old}\b", str(new), text)
        return text

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "quickstart.yaml").write_text(local((ROOT / "config" / "quickstart.yaml").read_text()))
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_ADMIN_TOKEN"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the virtualenv's `gateway`
    shell = Shell(tmp_path, env)

    outputs = [shell.run(local(line)) for line in setup]
    assert len(shell.env["GATEWAY_ADMIN_TOKEN"]) >= 32
    [secret] = re.findall(r"gw_live_[A-Za-z0-9_]+", outputs[-1].stdout)
    assert (tmp_path / "certs" / "gateway.crt").is_file()

    echo_line, run_line = serve
    await shell.start(local(echo_line), "echo upstream listening")
    gateway = await shell.start(local(run_line), "gateway started")
    try:
        key_call, admin_call = use
        assert "gw_live_…" in key_call and "--cacert certs/gateway.crt" in key_call and "https://" in key_call
        answer = shell.run(local(key_call).replace("gw_live_…", secret) + " -s -w '\\n%{http_code}'").stdout
        body, _, status = answer.rpartition("\n")
        assert status == "200", answer
        seen = json.loads(body)
        assert seen["path"] == "/api/v1/hello" and seen["gateway_headers"]["X-Gateway-Tenant"] == "acme"
        listed = json.loads(shell.run(local(admin_call) + " -s").stdout)
        assert listed["meta"]["total"] == 1 and listed["data"][0]["name"] == "acme backend"
        # the console, the OpenAPI document and its page, named in the text around the steps
        named = re.findall(r"`(http://127\.0\.0\.1:\d+/admin/[^`]*)`", re.sub(r"```.*?```", "", readme_section(), flags=re.S))
        assert {u.rsplit("/admin/", 1)[1] for u in named} == {"", "openapi.json", "docs"}
        for url in named:
            shown = shell.run(f"curl -s -o /dev/null -w '%{{http_code}}' {local(url)}").stdout
            assert shown == "200", (url, shown)
    finally:
        stopped = await gateway.stop()  # the README's `kill %2`: SIGTERM
        for running in shell.background:
            await running.kill()
    assert stopped == 0
    # what the steps wrote (the TLS key, the store, the signing key) would not be committed from a clone
    made = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
            and p.parts[len(tmp_path.parts)] in ("certs", "data")]
    assert "certs/gateway.key" in made and "data/gateway.db" in made
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *made], cwd=ROOT, capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == sorted(made)


def test_quickstart_upstreams_all_point_at_the_one_echo_port() -> None:
    quickstart = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    upstreams = {route["upstream"] for route in quickstart["routes"]}
    assert len(upstreams) == 1
    _, serve, _ = readme_blocks()
    assert f"--port {upstreams.pop().rsplit(':', 1)[1]}" in serve[0]
