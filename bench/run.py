"""Requests per second through the gateway next to nginx and the bare upstream, in one run.

    python bench/run.py                      # needs wrk and nginx (apt-get install wrk nginx)
    python bench/run.py --duration 15 --connections 64 --redis

Everything runs on this machine on loopback: an nginx upstream answering a small 200, nginx as a
TLS reverse proxy in front of it (the reference the speed issue compares with), and `gateway run`
processes with the same upstream. wrk drives each in turn with keep-alive connections. On a
2-core machine the load generator, the proxy and the upstream share the cores, so compare rows of
one run with each other, not with numbers from another machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway.tls import self_signed_paths  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
UNVERIFIED = ssl._create_unverified_context()  # loopback, self-signed: the bench trusts itself

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{upstream};
    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
  server {{
    listen 127.0.0.1:{tls} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"bench: {what} did not come up within {timeout:.0f}s")


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, context=UNVERIFIED if url.startswith("https") else None,
                                timeout=10) as response:
        return json.loads(response.read() or b"null")


@contextmanager
def process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class GatewayProcess:
    """One `gateway run` with its own config, data dir and ports."""

    def __init__(self, root: Path, name: str, upstream: int, ratelimit: dict[str, Any]) -> None:
        self.dir = root / name
        self.dir.mkdir()
        self.port, self.admin = free_port(), free_port()
        self.config = self.dir / "gateway.yaml"
        self.config.write_text(yaml.safe_dump({
            "server": {"host": "127.0.0.1", "port": self.port, "tls": {"self_signed": True}},
            "data_dir": str(self.dir),
            "admin": {"host": "127.0.0.1", "port": self.admin},
            "store": {"url": f"sqlite:///{self.dir}/gateway.db"},
            "ratelimit": ratelimit,
            "logging": {"access_log": False},  # nginx logs nothing either
            **({"call_log": {"enabled": False}} if os.environ.get("NOCALLLOG") else {}),
            "plans": {"bench": {"requests_per_minute": 10_000_000}},
            "routes": [
                {"name": "public", "path": "/public", "upstream": f"http://127.0.0.1:{upstream}", "auth": []},
                {"name": "api", "path": "/api", "upstream": f"http://127.0.0.1:{upstream}"},
            ],
        }))

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def admin_call(self, method: str, path: str, body: Any = None) -> Any:
        return http(method, f"http://127.0.0.1:{self.admin}{path}", body,
                    {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    @contextmanager
    def running(self) -> Iterator[None]:
        env = {**os.environ, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
        argv = [sys.executable, "-m", "gateway", "run", "--config", str(self.config)]
        with process(argv, self.dir / "gateway.log", env):
            wait_until(lambda: http("GET", f"http://127.0.0.1:{self.admin}/readyz") is not None,
                       f"gateway ({self.dir.name})")
            yield

    def credentials(self) -> tuple[str, str]:
        """A fresh API key on the bench plan and a JWT exchanged for it."""
        self.admin_call("POST", "/admin/tenants", {"id": "bench", "name": "Bench", "plan": "bench"})
        key = self.admin_call("POST", "/admin/keys", {"tenant_id": "bench", "name": "bench", "scope": "read_write"})
        token = http("POST", self.url("/api/v1/auth/token"), {"api_key": key["key"]})["token"]
        return key["key"], token


def wrk(url: str, args: argparse.Namespace, header: str | None = None) -> float:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if header:
        argv += ["-H", header]
    warm = subprocess.run([*argv[:3], "-d2s", *(["-H", header] if header else []), url],
                          capture_output=True, text=True, check=True)
    del warm
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"bench: {errors.group(1)} failed responses from {url}:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    assert rate, out
    print(f"    {float(rate.group(1)):10,.0f} req/s   p99 {p99.group(1) if p99 else '?'}", flush=True)
    return float(rate.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--redis", action="store_true", help="also run with the Redis limiter (127.0.0.1:6379)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"bench: {tool} is not installed (apt-get install {tool})")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        upstream, nginx_tls = free_port(), free_port()
        base = GatewayProcess(root, "gateway", upstream, {"backend": "memory"})
        variants = {"limits off": GatewayProcess(root, "nolimits", upstream, {"enabled": False})}
        if args.redis:
            variants["redis limiter"] = GatewayProcess(
                root, "redis", upstream, {"backend": "redis", "redis_prefix": f"gw:bench:{os.getpid()}:"})
        base_running = base.running()
        base_running.__enter__()  # makes the self-signed cert nginx reuses
        cert, cert_key = self_signed_paths(str(base.dir))
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=root, upstream=upstream, tls=nginx_tls,
                                          cert=cert, key=cert_key))
        stack.enter_context(process([nginx, "-c", str(conf)], root / "nginx.log"))
        wait_until(lambda: http("GET", f"http://127.0.0.1:{upstream}/") == {"ok": True}, "nginx")
        key, token = base.credentials()
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {os.cpu_count()} cpus", flush=True)

        def row(name: str, url: str, header: str | None = None) -> None:
            print(f"  {name}", flush=True)
            results[name] = wrk(url, args, header)

        row("upstream direct (nginx, plain HTTP)", f"http://127.0.0.1:{upstream}/")
        row("nginx TLS reverse proxy", f"https://127.0.0.1:{nginx_tls}/")
        row("gateway, public route (no auth)", base.url("/public"))
        row("gateway, API key (memory limiter)", base.url("/api"), f"X-API-Key: {key}")
        row("gateway, JWT (memory limiter)", base.url("/api"), f"Authorization: Bearer {token}")
        base_running.__exit__(None, None, None)  # one gateway at a time: they would share the cores
        for name, gateway in variants.items():
            with gateway.running():
                variant_key, _ = gateway.credentials()
                row(f"gateway, API key ({name})", gateway.url("/api"), f"X-API-Key: {variant_key}")

    key_rate = results["gateway, API key (memory limiter)"]
    print("\nratios")
    print(f"  gateway public / nginx TLS proxy      {results['gateway, public route (no auth)'] / results['nginx TLS reverse proxy']:.2f}")
    print(f"  gateway API key / nginx TLS proxy     {key_rate / results['nginx TLS reverse proxy']:.2f}")
    print(f"  API key / public route (auth cost)    {key_rate / results['gateway, public route (no auth)']:.2f}")
    print(f"  JWT / API key                          {results['gateway, JWT (memory limiter)'] / key_rate:.2f}")
    print(f"  limits on / limits off                 {key_rate / results['gateway, API key (limits off)']:.2f}")
    if args.redis:
        print(f"  redis limiter / memory limiter         {results['gateway, API key (redis limiter)'] / key_rate:.2f}")


if __name__ == "__main__":
    main()
