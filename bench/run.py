"""Requests/s and latency through the gateway next to nginx and a bare aiohttp proxy, one run.

    python bench/run.py                    # needs wrk and nginx (apt-get install wrk nginx)
    python bench/run.py --rounds 5 --duration 10 --redis

On loopback: nginx as the upstream (a ~100-byte JSON from memory), nginx as a TLS reverse proxy
(1 worker, keep-alive upstream), `bare_proxy.py` (the obvious aiohttp proxy, TLS), and `gateway
run` processes as shipped (TLS, access log, call log, metrics) with a key on a plan high enough
not to trip. With two CPUs, the upstream and wrk share CPU 0 and the proxy under test has CPU 1
(taskset). Rounds interleave every target so drift cancels; medians are reported, and the whole
record goes to a JSON file. Then latency at a fixed offered rate of half the gateway's maximum,
open loop, with `openloop.py` (a small asyncio client written because Debian has no wrk2): each
request is due on a schedule and its latency counts from when it was due.
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
import statistics
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

NGINX_COMMON = """
worker_processes 1;
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
  fastcgi_temp_path {dir}/{name}-fastcgi;
  uwsgi_temp_path {dir}/{name}-uwsgi;
  scgi_temp_path {dir}/{name}-scgi;
  keepalive_requests 1000000;
{servers}
}}
"""
UPSTREAM_SERVER = """  server {{
    listen 127.0.0.1:{upstream};
    location / {{ default_type application/json;
                  return 200 '{{"ok":true,"service":"bench upstream","items":[1,2,3,4,5,6,7,8]}}'; }}
  }}"""
PROXY_SERVER = """  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{tls} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}"""


def nginx_conf(root: Path, name: str, servers: str) -> Path:
    path = root / f"{name}.conf"
    path.write_text(NGINX_COMMON.format(dir=root, name=name, servers=servers))
    return path


def start_upstream(stack: ExitStack, root: Path, cpu: int | None) -> int:
    """The nginx upstream (a small JSON 200 from memory) for the bench scripts; its port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    upstream = free_port()
    conf = nginx_conf(root, "upstream", UPSTREAM_SERVER.format(upstream=upstream))
    stack.enter_context(process(pinned(cpu, [nginx, "-c", str(conf)]), root / "u.log"))
    wait_until(lambda: http("GET", f"http://127.0.0.1:{upstream}/")["ok"], "nginx upstream")
    return upstream


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

    def __init__(self, root: Path, name: str, upstream: int, ratelimit: dict[str, Any], cpu: int | str | None,
                 store_url: str | None = None, extra: dict[str, Any] | None = None, workers: int = 1) -> None:
        self.cpu = cpu
        self.dir = root / name
        self.dir.mkdir()
        self.port, self.admin = free_port(), free_port()
        self.config = self.dir / "gateway.yaml"
        self.config.write_text(yaml.safe_dump({
            "server": {"host": "127.0.0.1", "port": self.port, "tls": {"self_signed": True}, "workers": workers},
            "data_dir": str(self.dir),
            "admin": {"host": "127.0.0.1", "port": self.admin},
            "store": {"url": store_url or f"sqlite:///{self.dir}/gateway.db"},
            "ratelimit": ratelimit,
            "plans": {"bench": {"requests_per_minute": 10_000_000}},
            **(extra or {}),
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
        argv = pinned(self.cpu, [sys.executable, "-m", "gateway", "run", "--config", str(self.config)])
        with process(argv, self.dir / "gateway.log", env) as proc:
            self.pid = proc.pid  # taskset execs the gateway: same pid
            wait_until(lambda: http("GET", f"http://127.0.0.1:{self.admin}/readyz") is not None,
                       f"gateway ({self.dir.name})")
            yield

    def credentials(self) -> tuple[str, str]:
        """A fresh API key on the bench plan and a JWT exchanged for it."""
        self.admin_call("POST", "/admin/tenants", {"id": "bench", "name": "Bench", "plan": "bench"})
        key = self.admin_call("POST", "/admin/keys", {"tenant_id": "bench", "name": "bench", "scope": "read_write"})
        token = http("POST", self.url("/api/v1/auth/token"), {"api_key": key["key"]})["token"]
        return key["key"], token


def drop_schema(url: str, schema: str) -> None:
    subprocess.run(["psql", url, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cpu: int | str | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv


def wrk(url: str, args: argparse.Namespace, header: str | None, cpu: int | None) -> dict[str, float]:
    argv = pinned(cpu, ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"])
    if header:
        argv += ["-H", header]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"bench: {errors.group(1)} failed responses from {url}:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rate, out
    result = {"rps": float(rate.group(1))}
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
        if found:
            result[f"p{pct}_ms"] = float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return result


def measure_scaling(root: Path, upstream: int, args: argparse.Namespace) -> dict[str, list[float]]:
    """`server.workers: 2` against 1, everything on with the Redis limiter (the memory limiter
    cannot be shared by workers). Neither is pinned: the workers may use both CPUs, which they
    share with wrk (-t2) and the upstream nginx (still on CPU 0)."""
    prefix = f"gw:bench:{os.getpid()}:scaling"
    runs: dict[str, list[float]] = {}
    with ExitStack() as stack:
        gateways = {}
        for workers in (1, 2):
            gateway = GatewayProcess(root, f"workers{workers}", upstream,
                                     {"backend": "redis", "redis_prefix": f"{prefix}{workers}:"}, None, workers=workers)
            stack.enter_context(gateway.running())
            gateways[workers] = (gateway, gateway.credentials()[0])
        print(f"\nscaling: workers 1 vs 2, Redis limiter, wrk -t2 -c{args.connections}, nothing pinned", flush=True)
        for round_no in range(1, args.rounds + 1):
            for workers, (gateway, key) in gateways.items():
                argv = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "-H", f"X-API-Key: {key}",
                        gateway.url("/api")]
                out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                found = re.search(r"Requests/sec:\s+([\d.]+)", out)
                assert found and "Non-2xx" not in out, out
                runs.setdefault(f"workers: {workers}", []).append(float(found.group(1)))
                print(f"  round {round_no}  workers: {workers}  {float(found.group(1)):8,.0f} req/s", flush=True)
    return runs


def openloop(url: str, header: str | None, rate: float, duration: int, cpu: int | None) -> dict[str, float]:
    argv = pinned(cpu, [sys.executable, str(Path(__file__).with_name("openloop.py")), "--url", url,
                        "--rate", f"{rate:.0f}", "--duration", str(duration), *(["--header", header] if header else [])])
    return dict(json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all targets; the median is reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--redis", action="store_true", help="also run with the Redis limiter (127.0.0.1:6379)")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL + Redis, e.g. "
                        "postgresql://postgres@127.0.0.1:5432/test (a schema of its own is used)")
    parser.add_argument("--scaling", action="store_true",
                        help="also compare server.workers 2 with 1 (Redis limiter, needs 127.0.0.1:6379)")
    parser.add_argument("--latency-duration", type=int, default=8,
                        help="seconds per open-loop latency measurement at half the gateway's maximum (0: skip)")
    parser.add_argument("--json", default=str(Path(__file__).with_name("last-run.json")), help="where the record goes")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"bench: {tool} is not installed (apt-get install {tool})")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # upstream and load generator share one CPU, the proxy under test has the other to itself
    two = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    load_cpu, proxy_cpu = (0, 1) if two else (None, None)
    samples: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        upstream, nginx_tls, bare_port, floor_port = free_port(), free_port(), free_port(), free_port()
        gateways = {
            "gateway": GatewayProcess(root, "gateway", upstream, {"backend": "memory"}, proxy_cpu),
            "limits off": GatewayProcess(root, "nolimits", upstream, {"enabled": False}, proxy_cpu),
            "access log off": GatewayProcess(root, "nolog", upstream, {"backend": "memory"}, proxy_cpu,
                                             extra={"logging": {"access_log": False}}),
            "metrics and access log off": GatewayProcess(root, "quiet", upstream, {"backend": "memory"}, proxy_cpu,
                                                         extra={"metrics": {"enabled": False},
                                                                "logging": {"access_log": False}}),
        }
        if args.redis:
            gateways["redis"] = GatewayProcess(
                root, "redis", upstream, {"backend": "redis", "redis_prefix": f"gw:bench:{os.getpid()}:"}, proxy_cpu)
        if args.postgres:
            schema = f"bench_{os.getpid()}"
            gateways["postgres + redis"] = GatewayProcess(
                root, "scaleout", upstream,
                {"backend": "redis", "redis_prefix": f"gw:bench:{os.getpid()}:pg:"}, proxy_cpu,
                store_url=f"{args.postgres}?schema={schema}")
            stack.callback(drop_schema, args.postgres, schema)
        for gateway in gateways.values():
            stack.enter_context(gateway.running())
        cert, cert_key = self_signed_paths(str(gateways["gateway"].dir))
        upstream_conf = nginx_conf(root, "upstream", UPSTREAM_SERVER.format(upstream=upstream))
        proxy_conf = nginx_conf(root, "proxy", PROXY_SERVER.format(upstream=upstream, tls=nginx_tls,
                                                                   cert=cert, key=cert_key))
        stack.enter_context(process(pinned(load_cpu, [nginx, "-c", str(upstream_conf)]), root / "u.log"))
        stack.enter_context(process(pinned(proxy_cpu, [nginx, "-c", str(proxy_conf)]), root / "n.log"))
        bare = [sys.executable, str(Path(__file__).with_name("bare_proxy.py")), str(bare_port),
                f"http://127.0.0.1:{upstream}", str(cert), str(cert_key)]
        stack.enter_context(process(pinned(proxy_cpu, bare), root / "bare.log"))
        floor = [sys.executable, str(Path(__file__).with_name("floor_proxy.py")), str(floor_port), str(upstream),
                 str(cert), str(cert_key)]
        floor_pid = stack.enter_context(process(pinned(proxy_cpu, floor), root / "floor.log")).pid
        wait_until(lambda: http("GET", f"http://127.0.0.1:{upstream}/")["ok"], "nginx upstream")
        wait_until(lambda: http("GET", f"https://127.0.0.1:{bare_port}/")["ok"], "bare proxy")
        wait_until(lambda: http("GET", f"https://127.0.0.1:{floor_port}/")["ok"], "floor proxy")
        base = gateways["gateway"]
        key, token = base.credentials()
        targets: list[tuple[str, str, str | None, int | None]] = [
            ("upstream direct (nginx, plain HTTP)", f"http://127.0.0.1:{upstream}/", None, None),
            ("nginx TLS reverse proxy", f"https://127.0.0.1:{nginx_tls}/", None, None),
            ("bare aiohttp proxy (TLS)", f"https://127.0.0.1:{bare_port}/", None, None),
            ("floor proxy (Protocols + httptools, TLS)", f"https://127.0.0.1:{floor_port}/", None, floor_pid),
            ("gateway, public route", base.url("/public"), None, base.pid),
            ("gateway, API key", base.url("/api"), f"X-API-Key: {key}", base.pid),
            ("gateway, JWT", base.url("/api"), f"Authorization: Bearer {token}", base.pid),
        ]
        for name, gateway in gateways.items():
            if gateway is not base:
                variant_key, _ = gateway.credentials()
                targets.append((f"gateway, API key, {name}", gateway.url("/api"), f"X-API-Key: {variant_key}",
                                gateway.pid))
        print(f"wrk -t1 -c{args.connections} -d{args.duration}s x {args.rounds} rounds; "
              f"load on cpu {load_cpu}, proxy on cpu {proxy_cpu}", flush=True)
        for _name, url, header, _ in targets:  # warm every target once: TLS sessions, caches, pools
            subprocess.run(pinned(load_cpu, ["wrk", "-t1", "-c8", "-d1s", *(["-H", header] if header else []), url]),
                           capture_output=True, check=True)
        for round_no in range(1, args.rounds + 1):
            for name, url, header, pid in targets:
                before = cpu_seconds(pid) if pid else 0.0
                result = wrk(url, args, header, load_cpu)
                if pid:
                    # CPU per request is steadier than req/s on a shared machine: it does not care
                    # how much CPU the neighbours left us, only what each request cost.
                    result["cpu_us"] = (cpu_seconds(pid) - before) / (result["rps"] * args.duration) * 1e6
                samples.setdefault(name, []).append(result)
                print(f"  round {round_no}  {name:<44} {result['rps']:8,.0f} req/s  "
                      f"p50 {result.get('p50_ms', 0):6.2f} ms  p99 {result.get('p99_ms', 0):6.2f} ms"
                      + (f"  {result['cpu_us']:6.0f} µs CPU/req" if pid else ""), flush=True)

        latency: dict[str, list[dict[str, float]]] = {}
        if args.latency_duration > 0:
            # Open loop at half the gateway's measured maximum: what a client sees at a sane load.
            rate = statistics.median(r["rps"] for r in samples["gateway, API key"]) * 0.5
            print(f"\nopen loop at {rate:,.0f} req/s (half the gateway's API-key maximum), "
                  f"{args.latency_duration}s x {args.rounds} rounds (bench/openloop.py)", flush=True)
            for round_no in range(1, args.rounds + 1):
                for name, url, header, _ in targets:
                    if name.startswith("gateway, API key, "):
                        continue  # the feature variants matter for throughput, not here
                    result = openloop(url, header, rate, args.latency_duration, load_cpu)
                    latency.setdefault(name, []).append(result)
                    print(f"  round {round_no}  {name:<44} p50 {result['p50_ms']:6.3f} ms  p99 {result['p99_ms']:7.3f} ms"
                          f"  ({result['achieved_rps']:,.0f} req/s, {result['errors']} errors)", flush=True)

        scaling: dict[str, list[float]] = {}
        if args.scaling:
            scaling = measure_scaling(root, upstream, args)

    summary = {name: {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0]}
               for name, runs in samples.items()}
    latency_summary = {name: {k: statistics.median(r[k] for r in runs) for k in ("p50_ms", "p99_ms", "achieved_rps")}
                       for name, runs in latency.items()}
    if latency_summary:
        direct = latency_summary["upstream direct (nginx, plain HTTP)"]
        print(f"\n{'open loop, fixed rate':<46} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}   (added over direct)")
        for name, row in latency_summary.items():
            row["added_p50_ms"] = row["p50_ms"] - direct["p50_ms"]
            row["added_p99_ms"] = row["p99_ms"] - direct["p99_ms"]
            print(f"{name:<46} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['added_p50_ms']:8.3f} {row['added_p99_ms']:8.3f}")
    print(f"\n{'target':<46} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11}   (median of {args.rounds})")
    for name, row in summary.items():
        cpu = f"{row['cpu_us']:11.0f}" if "cpu_us" in row else " " * 11
        print(f"{name:<46} {row['rps']:8,.0f} {row.get('p50_ms', 0):8.2f} {row.get('p99_ms', 0):8.2f} {cpu}")
    rps = {name: row["rps"] for name, row in summary.items()}
    gw_key = rps["gateway, API key"]
    ratios = {
        "gateway API key / nginx": gw_key / rps["nginx TLS reverse proxy"],
        "gateway API key / bare aiohttp proxy": gw_key / rps["bare aiohttp proxy (TLS)"],
        "gateway API key / public route": gw_key / rps["gateway, public route"],
        "gateway API key / floor proxy": gw_key / rps["floor proxy (Protocols + httptools, TLS)"],
        "floor proxy / nginx": rps["floor proxy (Protocols + httptools, TLS)"] / rps["nginx TLS reverse proxy"],
        "JWT / API key": rps["gateway, JWT"] / gw_key,
        "limits on / limits off": gw_key / rps["gateway, API key, limits off"],
        "access log on / off": gw_key / rps["gateway, API key, access log off"],
        "metrics on / off (access log off)": rps["gateway, API key, access log off"]
        / rps["gateway, API key, metrics and access log off"],
    }
    if args.redis:
        ratios["redis limiter / memory limiter"] = rps["gateway, API key, redis"] / gw_key
    if scaling:
        ratios["workers 2 / workers 1 (Redis limiter)"] = (statistics.median(scaling["workers: 2"])
                                                          / statistics.median(scaling["workers: 1"]))
    if args.postgres:
        ratios["postgres + redis / sqlite + memory"] = rps["gateway, API key, postgres + redis"] / gw_key
    cpu = {name: row["cpu_us"] for name, row in summary.items() if "cpu_us" in row}
    quiet = cpu["gateway, API key, metrics and access log off"]
    costs = {
        "access log (µs CPU per request)": cpu["gateway, API key"] - cpu["gateway, API key, access log off"],
        "metrics (µs CPU per request)": cpu["gateway, API key, access log off"] - quiet,
        "limits (µs CPU per request)": cpu["gateway, API key"] - cpu["gateway, API key, limits off"],
        "auth vs public route (µs CPU per request)": cpu["gateway, API key"] - cpu["gateway, public route"],
    }
    print("\nratios")
    for name, value in ratios.items():
        print(f"  {name:<40} {value:.2f}")
    print("\nfeature costs from CPU per request (median rows)")
    for name, value in costs.items():
        print(f"  {name:<44} {value:6.1f}   ({value / quiet * 100:.1f}% of {quiet:.0f} µs)")
    record = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
              "pinned": two, "args": vars(args), "samples": samples, "median": summary, "ratios": ratios, "costs_us": costs,
              "open_loop": {"samples": latency, "median": latency_summary}, "scaling": scaling}
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nrecord written to {args.json}")


if __name__ == "__main__":
    main()
