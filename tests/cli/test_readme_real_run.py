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
from collections.abc import Callable
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


def quickstart_ports() -> list[int]:
    """The proxy, admin and upstream ports `config/quickstart.yaml` and the README print."""
    quickstart = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    return [quickstart["server"]["port"], quickstart["admin"]["port"],
            int(quickstart["routes"][0]["upstream"].rsplit(":", 1)[1])]


def localiser() -> Callable[[str], str]:
    """Rewrites the printed ports to free ones, so tests can run side by side."""
    printed = quickstart_ports()
    assert not set(printed) & demo_ports(), "the quickstart must not need the demo's ports"
    free = [free_port() for _ in printed]

    def local(text: str) -> str:
        for old, new in zip(printed, free, strict=True):
            text = re.sub(rf"\b{old}\b", str(new), text)
        return text
    return local


def clone_shell(tmp_path: Path, local: Callable[[str], str], extra_config: str = "") -> Shell:
    """A user's shell in a fresh clone's directory, the `gateway` of this virtualenv on PATH."""
    (tmp_path / "config").mkdir()
    quickstart = (ROOT / "config" / "quickstart.yaml").read_text() + extra_config
    (tmp_path / "config" / "quickstart.yaml").write_text(local(quickstart))
    env = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_ADMIN_TOKEN", "GATEWAY_CONFIG")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the virtualenv's `gateway`
    return Shell(tmp_path, env)


async def test_running_it_for_real_works_as_printed(tmp_path: Path) -> None:
    setup, serve, use = readme_blocks()
    local = localiser()
    shell = clone_shell(tmp_path, local)

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


def section(title: str) -> str:
    return (ROOT / "README.md").read_text().split(title + "\n", 1)[1].split("\n## ", 1)[0]


def commands(block: str) -> list[str]:
    """A ```sh block's commands: `\\`-continued lines joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_admin_call_with_the_exported_token_names_the_quickstart_admin_port() -> None:
    """`$GATEWAY_ADMIN_TOKEN` is the real run's token: sent to the demo's admin port it is a 401."""
    readme = (ROOT / "README.md").read_text().split("\n## Containers", 1)[0]
    admin_port = quickstart_ports()[1]
    calls = [line for block in re.findall(r"```sh\n(.*?)```", readme, re.S) for line in commands(block)
             if "$GATEWAY_ADMIN_TOKEN" in line and "http://" in line]
    assert len(calls) >= 5, calls
    assert [c for c in calls if f"http://127.0.0.1:{admin_port}/admin/" not in c] == []


async def test_the_portal_and_usage_sections_work_on_the_real_run(tmp_path: Path) -> None:
    """After "Running it for real": the portal enabled as printed (without `public_url`, as the README
    says for 127.0.0.1), the first owner invited by both printed commands, the link accepted and signed
    in with (curl, as a browser's page would call the API), and the usage calls answered."""
    setup, serve, _ = readme_blocks()
    portal = section("## Tenant portal")
    [portal_yaml] = re.findall(r"```yaml\n(.*?)```", portal, re.S)
    portal_yaml = "".join(line + "\n" for line in portal_yaml.splitlines() if "public_url:" not in line)
    local = localiser()
    proxy_port = local(str(quickstart_ports()[0]))
    shell = clone_shell(tmp_path, local, "\n" + portal_yaml)
    for line in setup:
        shell.run(local(line))
    echo_line, run_line = serve
    await shell.start(local(echo_line), "echo upstream listening")
    gateway = await shell.start(local(run_line), "gateway started")
    try:
        invite_cli, invite_api = commands(re.findall(r"```sh\n(.*?)```", portal, re.S)[0])
        printed = shell.run(local(invite_cli)).stdout
        origin = f"https://127.0.0.1:{proxy_port}"
        [token] = re.findall(rf"^{re.escape(origin)}/portal/#invitation=(\S+)$", printed, re.M)
        answered = json.loads(shell.run(local(invite_api) + " -s").stdout)
        assert answered["status"] == "invited" and answered["invitation_url"].startswith(origin + "/portal/#")

        api = f"curl -s --cacert certs/gateway.crt -H 'Origin: {origin}' -H 'Content-Type: application/json'"
        password = "correct horse battery staple"
        accepted = shell.run(f"{api} -w '\\n%{{http_code}}' -d '{{\"password\": \"{password}\"}}' "
                             f"{origin}/portal/api/invitations/{token}/accept").stdout
        assert accepted.endswith(("\n200", "\n204")), accepted
        shell.run(f"{api} -c jar -d '{{\"email\": \"owner@acme.example\", \"password\": \"{password}\"}}' "
                  f"{origin}/portal/api/session")
        me = json.loads(shell.run(f"curl -s --cacert certs/gateway.crt -b jar {origin}/portal/api/me").stdout)
        assert me["user"]["email"] == "owner@acme.example" and me["user"]["role"] == "owner", me

        usage = commands(re.findall(r"```sh\n(.*?)```", section("## Usage"), re.S)[0])
        key_id = json.loads(shell.run("gateway keys list --json").stdout)["data"][0]["id"]
        assert len(usage) == 2
        for call in usage:
            shown = json.loads(shell.run(local(call).replace("key_…", key_id) + " -s").stdout)
            assert shown["data"] and {"t", "requests", "status"} <= set(shown["data"][0]), shown
    finally:
        stopped = await gateway.stop()
        for running in shell.background:
            await running.kill()
    assert stopped == 0
