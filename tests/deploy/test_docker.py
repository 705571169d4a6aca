"""The Dockerfile: its stages, layers, pin and user, and its exact command and default config run here.

No Docker engine runs where the tests do, so the image is not built. Instead its instructions are
read: both stages on the official base pinned by digest, the compiled wheel built in a stage with a
C compiler and installed (and checked to be compiled) in an image without one, dependencies
installed from pyproject.toml before the code (a code change reuses that layer), a numeric
non-root user. Then what the image would run
(ENTRYPOINT + CMD, the ENV, the WORKDIR, the config file COPY puts at /etc/gateway/gateway.yaml)
runs in this virtualenv with the image's paths under a temporary directory, and must answer
/healthz and a proxied request, writing nothing outside its data volume (a read-only root works).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.cli.test_run import free_port
from tests.processes import GatewayProcess

REPO = Path(__file__).resolve().parents[2]
TOKEN = "docker-admin-token-0123456789abcdef"


def steps() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    """The instructions of each stage, by its name (the last, unnamed one: "image"); "" holds the ARGs
    before the first FROM, the FROM itself opens its stage."""
    out: dict[str, list[tuple[str, str]]] = {"": []}
    current = out[""]
    for word, rest in steps():
        if word == "FROM":
            _, _, name = rest.partition(" AS ")
            current = out.setdefault(name.strip() or "image", [])
        current.append((word, rest))
    return out


def last(kind: str) -> str:
    return [rest for word, rest in stages()["image"] if word == kind][-1]


def image_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for word, rest in stages()["image"] if word == "ENV" for pair in shlex.split(rest))


def copied_to(destination: str) -> Path:
    for word, rest in steps():
        if word == "COPY" and rest.split()[-1] == destination:
            return REPO / rest.split()[0]
    raise AssertionError(f"nothing is copied to {destination}")


def test_both_stages_run_on_the_official_base_pinned_by_digest() -> None:
    by_stage = stages()
    args = dict(rest.split("=", 1) for word, rest in by_stage[""] if word == "ARG")
    assert set(by_stage) == {"", "build", "image"}
    for name in ("build", "image"):
        word, base = by_stage[name][0]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.partition(" AS ")[0])
        # the same interpreter builds the extensions and runs them: the official image's (PGO, LTO)
        assert re.fullmatch(r"python:3\.\d+-slim@sha256:[0-9a-f]{64}", base), base


def test_the_build_stage_compiles_the_wheel_with_a_compiler_the_image_does_without() -> None:
    build = stages()["build"]
    runs = [rest for word, rest in build if word == "RUN"]
    assert any(re.search(r"apt-get install .*\bgcc\b", run) for run in runs), "a C compiler for mypyc"
    code = build.index(("COPY", "gateway ./gateway"))
    wheel = next(n for n, (word, rest) in enumerate(build) if word == "RUN" and "pip wheel" in rest)
    assert code < wheel and "GATEWAY_COMPILE=1 pip wheel" in build[wheel][1]  # setup.py compiles HOT_MODULES
    # what the compile needs (mypy, the dependencies it reads types from) in a layer before the code
    needs = next(n for n, (word, rest) in enumerate(build) if word == "RUN" and "get_requires_for_build_wheel" in rest)
    assert needs < code and "GATEWAY_COMPILE=1" in build[needs][1]
    assert [rest.split()[:-1] for word, rest in build[:needs] if word == "COPY"] == [["pyproject.toml", "setup.py", "README.md"]]
    image = stages()["image"]
    # no sources in the image (the code comes as the wheel) and no compiler
    assert [rest.split()[0] for word, rest in image if word == "COPY"] == ["pyproject.toml", "deploy/docker/gateway.yaml"]
    assert not any(re.search(r"\bgcc\b", rest) for _, rest in image)


def test_the_image_installs_the_compiled_wheel_and_refuses_a_pure_python_one(tmp_path: Path) -> None:
    build, image = stages()["build"], stages()["image"]
    wheels = re.search(r"--wheel-dir (\S+)", next(rest for word, rest in build if word == "RUN" and "pip wheel" in rest))
    assert wheels
    [install] = [rest for word, rest in image if word == "RUN" and "gateway-" in rest]
    assert f"--mount=type=bind,from=build,source={wheels.group(1)},target={wheels.group(1)}" in install
    assert f"pip install --no-deps {wheels.group(1)}/gateway-*.whl" in install
    # the build fails unless the installed gateway runs compiled: that check, run on this
    # virtualenv's gateway, passes on the compiled build and fails on pure Python
    check = install.split("&&", 1)[1].strip()
    assert check.startswith("gateway --version")
    script = str(Path(sys.executable).parent / "gateway")
    ran = subprocess.run(check.replace("gateway --version", f"{shlex.quote(script)} --version", 1), shell=True,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    compiled = os.environ.get("GATEWAY_EXPECTED_BUILD", "pure") == "compiled"
    assert (ran.returncode == 0) is compiled, (ran.stdout, ran.stderr)


def test_the_image_installs_dependencies_first_and_runs_as_non_root() -> None:
    instructions = stages()["image"]

    def first(match: Any) -> int:
        return next(n for n, step in enumerate(instructions) if match(*step))

    deps = first(lambda word, rest: word == "RUN" and "pip install" in rest)
    code = first(lambda word, rest: word == "RUN" and "gateway-" in rest)
    assert deps < code, "dependencies must be installed before the code"
    assert [rest for word, rest in instructions[:deps] if word == "COPY"] == ["pyproject.toml ./"]
    # the dependency list the first layer installs is pyproject's, with the extras the image offers
    script = re.search(r'python -c "(.*?)" >', instructions[deps][1])
    assert script, instructions[deps][1]
    listed = subprocess.run([sys.executable, "-c", script.group(1)], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split("\n")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert listed[:-1] == project["dependencies"] + extras["redis"] + extras["postgres"]
    user = last("USER").split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user), "a numeric non-root uid (runAsNonRoot can check it)"
    words = [word for word, _ in instructions]
    assert len(words) - 1 - words[::-1].index("USER") < words.index("ENTRYPOINT")
    config = yaml.safe_load(copied_to("/etc/gateway/gateway.yaml").read_text())
    assert f"127.0.0.1:{config['admin']['port']}/healthz" in last("HEALTHCHECK")
    assert json.loads(last("VOLUME")) == [config["data_dir"]] == [last("WORKDIR")]


def unset_variables(config_text: str) -> set[str]:
    """The `${NAME}` references without a default: what `docker run` must set."""
    return set(re.findall(r"\$\{(\w+)\}", config_text))


def test_readme_docker_run_sets_what_the_default_config_needs() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("docker build -t gateway .", 1)[1].split("```", 1)[0]
    run = next(line for line in re.split(r"(?<!\\)\n", block) if "--name gateway" in line)
    needed = unset_variables(copied_to("/etc/gateway/gateway.yaml").read_text()) | {"GATEWAY_ADMIN_TOKEN"}
    assert {f"-e {name}" for name in needed} <= {m.group(0) for m in re.finditer(r"-e \w+", run)}
    config = yaml.safe_load(copied_to("/etc/gateway/gateway.yaml").read_text())
    assert f"-p 127.0.0.1:{config['admin']['port']}:{config['admin']['port']}" in run  # admin on the host's loopback
    assert f"-p {config['server']['port']}:{config['server']['port']}" in run
    assert "--read-only" in run and "--tmpfs /tmp" in run and f":{config['data_dir']}" in run


class Image:
    """The image's filesystem as the gateway sees it, under a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proxy_port, self.admin_port = free_port(), free_port()
        config = yaml.safe_load(copied_to("/etc/gateway/gateway.yaml").read_text())
        self.data = self.path(config["data_dir"])
        self.data.mkdir(parents=True)  # the volume
        text = copied_to("/etc/gateway/gateway.yaml").read_text().replace(config["data_dir"], str(self.data))
        text = re.sub(rf"port: {config['server']['port']}\b", f"port: {self.proxy_port}", text)
        text = re.sub(rf"port: {config['admin']['port']}\b", f"port: {self.admin_port}", text)
        self.path("/etc/gateway").mkdir(parents=True)
        self.path("/etc/gateway/gateway.yaml").write_text(text)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def command(self, *args: str) -> list[str]:
        """An image path in the arguments becomes its place here; `gateway` is this virtualenv's."""
        executable, *rest = [*json.loads(last("ENTRYPOINT")), *args]
        assert executable == "gateway"
        return [str(Path(sys.executable).parent / "gateway"),
                *[str(self.path(a)) if a.startswith("/etc/gateway/") else a for a in rest]]

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "HOME": str(self.data), **image_env(), **extra}

    def files(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}


async def test_the_image_command_and_default_config_serve(tmp_path: Path, upstream: Any) -> None:
    image = Image(tmp_path / "image")
    before = image.files()
    env = image.env(GATEWAY_ADMIN_TOKEN=TOKEN, GATEWAY_UPSTREAM=upstream[0])
    cmd = json.loads(last("CMD"))
    proc = await asyncio.create_subprocess_exec(
        *image.command(*cmd), cwd=image.path(last("WORKDIR")), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    running = GatewayProcess(proc)
    try:
        await running.wait_log("gateway started")
        async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{image.admin_port}/healthz") as resp:
            assert resp.status == 200
        # `docker exec gateway gateway ...` in the README: the same command, config and environment
        config = ["--config", "/etc/gateway/gateway.yaml"]
        for args in (["tenants", "create", *config, "--id", "acme", "--name", "Acme", "--plan", "starter"],
                     ["keys", "create", *config, "--tenant", "acme", "--name", "backend", "--json"]):
            made = subprocess.run(image.command(*args), cwd=image.path(last("WORKDIR")), env=env,
                                  capture_output=True, text=True, timeout=30)
            assert made.returncode == 0, made.stderr
        secret = json.loads(made.stdout)["key"]
        trust = ssl.create_default_context(cafile=str(image.data / "tls" / "self-signed.crt"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as client:
            async with client.get(f"https://127.0.0.1:{image.proxy_port}/hello?x=1",
                                  headers={"X-API-Key": secret}) as resp:
                assert resp.status == 200, await resp.text()
                seen = await resp.json()
            async with client.get(f"https://127.0.0.1:{image.proxy_port}/hello") as resp:
                assert resp.status == 401
        assert seen["path"] == "/hello" and upstream[1].hits == 1
    finally:
        stopped = await running.stop()
    assert stopped == 0
    written = image.files() - before
    assert written and all(Path(image.root, f).is_relative_to(image.data) for f in written), written


async def test_the_default_config_names_a_missing_upstream_variable(tmp_path: Path) -> None:
    image = Image(tmp_path / "image")
    result = subprocess.run(image.command(*json.loads(last("CMD"))), cwd=image.path(last("WORKDIR")),
                            env=image.env(GATEWAY_ADMIN_TOKEN=TOKEN), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "environment variable GATEWAY_UPSTREAM is not set" in result.stderr.splitlines()[0], result.stderr
    assert "Traceback" not in result.stderr
