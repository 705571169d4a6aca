"""Soak: the gateway at 70 % of its measured maximum for minutes, with key churn and a reload.

    python bench/soak.py                      # 10 minutes, 1,000 keys (needs wrk and nginx)
    python bench/soak.py --minutes 2 --keys 200

One `gateway run` as shipped (TLS, API keys, memory limiter, metrics, call log, access log) in
front of an nginx upstream, pinned like `run.py` (proxy alone on CPU 1). First a closed-loop wrk
run measures the maximum; then wrk offers 70 % of it (each connection paced by `paced.lua`) in
segments of `--segment` seconds (after a `--warmup` at the same rate), while a thread creates, rotates and revokes a key every
second, and the route table is reloaded (`POST /admin/reload`) half-way. Per segment: the achieved rate,
p50/p99, responses by status, and the gateway's RSS. It fails on any status other than 200 and
the expected 401 (rotated or revoked keys still in wrk's list) / 429, on socket errors, or when
RSS grew more than 10 % from the first segment to the last.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import GatewayProcess, http, pinned, start_upstream  # noqa: E402  (bench/ holds scripts, not a package)

PACED = str(Path(__file__).with_name("paced.lua"))


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match
    return int(match.group(1))


def paced_wrk(url: str, keys_file: Path, seconds: int, connections: int, delay_ms: float, cpu: int | None) -> dict[str, Any]:
    argv = pinned(cpu, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", PACED,
                        url, "--", str(keys_file), f"{delay_ms:.3f}"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rate, out
    result: dict[str, Any] = {"rps": float(rate.group(1)),
                              "statuses": {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}}
    errors = re.search(r"^socket errors (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    result["socket_errors"] = sum(int(n) for n in errors.groups()) if errors else 0
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if found:
            result[f"p{pct}_ms"] = float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return result


class Churn(threading.Thread):
    """Every second: one key created, one rotated, one revoked (the admin API, as a console would)."""

    def __init__(self, gateway: GatewayProcess, keys: dict[str, str], tenants: list[str]) -> None:
        super().__init__(daemon=True)
        self.gateway, self.keys, self.tenants = gateway, keys, tenants
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = {"created": 0, "rotated": 0, "revoked": 0}
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.wait(1.0):
            n += 1
            try:
                with self.lock:
                    rotate, revoke = random.sample(sorted(self.keys), 2)
                created = self.gateway.admin_call("POST", "/admin/keys", {
                    "tenant_id": random.choice(self.tenants), "name": f"churn-{n}", "scope": "read_write"})
                rotated = self.gateway.admin_call("POST", f"/admin/keys/{rotate}/rotate")
                self.gateway.admin_call("POST", f"/admin/keys/{revoke}/revoke")
                with self.lock:
                    self.keys[created["id"]] = created["key"]
                    self.keys[rotated["id"]] = rotated["key"]
                    del self.keys[rotate], self.keys[revoke]
                self.done["created"] += 1
                self.done["rotated"] += 1
                self.done["revoked"] += 1
            except Exception as exc:  # reported at the end; the soak goes on
                self.failures.append(repr(exc))

    def write_keys(self, path: Path) -> None:
        with self.lock:
            path.write_text("\n".join(self.keys.values()) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--segment", type=int, default=30, help="seconds per measured segment")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--load", type=float, default=0.7, help="offered rate as a fraction of the maximum")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=70, help="seconds at the offered rate before measuring: "
                        "the limiter's 60 s window fills up first, so RSS is compared from a full window on")
    parser.add_argument("--json", default=str(Path(__file__).with_name("last-soak.json")))
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"soak: {tool} is not installed (apt-get install {tool})")
    two = shutil.which("taskset") is not None
    load_cpu, proxy_cpu = (0, 1) if two else (None, None)

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        upstream = start_upstream(stack, root, load_cpu)
        # All the soak's clients are one address; its 401s (keys rotated and revoked under them)
        # would spend the per-address failed-credential budget and be held a second each, which
        # is what that budget is for, not what the soak measures.
        gateway = GatewayProcess(root, "soak", upstream, {"backend": "memory", "failed_auth_per_minute": 0}, proxy_cpu,
                                 extra={"keys": {"max_per_tenant": args.keys}})
        stack.enter_context(gateway.running())

        tenants = [f"t{i}" for i in range(10)]
        for tenant in tenants:
            gateway.admin_call("POST", "/admin/tenants", {"id": tenant, "name": tenant, "plan": "bench"})
        keys: dict[str, str] = {}
        for i in range(args.keys):
            created = gateway.admin_call("POST", "/admin/keys", {
                "tenant_id": tenants[i % len(tenants)], "name": f"k{i}", "scope": "read_write"})
            keys[created["id"]] = created["key"]
        keys_file = root / "keys.txt"
        churn = Churn(gateway, keys, tenants)
        churn.write_keys(keys_file)
        url = gateway.url("/api")

        peak = paced_wrk(url, keys_file, 10, args.connections, 0, load_cpu)
        rate = peak["rps"] * args.load
        delay_ms = args.connections * 1000 / rate
        print(f"maximum (closed loop, {args.connections} connections): {peak['rps']:,.0f} req/s; "
              f"offering {rate:,.0f} req/s ({args.load:.0%}), {args.keys} keys, churn 1/s each", flush=True)

        segments = max(2, int(args.minutes * 60 / args.segment))
        rows: list[dict[str, Any]] = []
        churn.start()
        warm = paced_wrk(url, keys_file, args.warmup, args.connections, delay_ms, load_cpu)
        print(f"  warm-up {args.warmup} s: {warm['rps']:,.0f} req/s, rss {rss_kib(gateway.pid) / 1024:.1f} MiB", flush=True)
        for n in range(segments):
            reload = None
            if n == segments // 2:  # half-way: one more route, reloaded while traffic flows
                cfg = yaml.safe_load(gateway.config.read_text())
                cfg["routes"].append({"name": "added", "path": "/added", "upstream": f"http://127.0.0.1:{upstream}"})
                gateway.config.write_text(yaml.safe_dump(cfg))
                reload = gateway.admin_call("POST", "/admin/reload")
            churn.write_keys(keys_file)
            row = paced_wrk(url, keys_file, args.segment, args.connections, delay_ms, load_cpu)
            row["rss_kib"] = rss_kib(gateway.pid)
            row["reloaded"] = reload is not None
            rows.append(row)
            print(f"  {n + 1:3d}/{segments}  {row['rps']:7,.0f} req/s  p50 {row.get('p50_ms', 0):6.2f} ms  "
                  f"p99 {row.get('p99_ms', 0):6.2f} ms  rss {row['rss_kib'] / 1024:6.1f} MiB  "
                  f"statuses {row['statuses']}  socket errors {row['socket_errors']}"
                  + ("  (routes reloaded)" if reload else ""), flush=True)
        churn.stop.set()
        churn.join()
        added = http("GET", gateway.url("/added"), headers={"X-API-Key": next(iter(keys.values()))})
        log = (gateway.dir / "gateway.log").read_text(errors="replace").splitlines()
        problems = [line for line in log if '"level":"warning"' in line or '"level":"error"' in line]
        for line in problems[:10]:
            print("gateway:", line[:300])

    unexpected = {s: n for row in rows for s, n in row["statuses"].items() if s not in (200, 401, 429)}
    socket_errors = sum(row["socket_errors"] for row in rows)
    growth = (rows[-1]["rss_kib"] - rows[0]["rss_kib"]) / rows[0]["rss_kib"]
    p99s = [row["p99_ms"] for row in rows if "p99_ms" in row]
    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args), "peak_rps": peak["rps"],
        "offered_rps": rate, "segments": rows, "churn": churn.done, "churn_failures": churn.failures,
        "unexpected_statuses": unexpected, "socket_errors": socket_errors, "rss_growth": growth,
        "p99_ms": {"median": statistics.median(p99s), "max": max(p99s)}, "added_route_answered": bool(added),
    }
    Path(args.json).write_text(json.dumps(summary, indent=1))
    print(f"\nrequests: {sum(sum(r['statuses'].values()) for r in rows):,}  "
          f"(401 expected for rotated/revoked keys: {sum(r['statuses'].get(401, 0) for r in rows):,})")
    print(f"churn: {churn.done}, failures {len(churn.failures)}; unexpected statuses {unexpected or 'none'}; "
          f"socket errors {socket_errors}")
    print(f"RSS {rows[0]['rss_kib'] / 1024:.1f} -> {rows[-1]['rss_kib'] / 1024:.1f} MiB ({growth:+.1%}); "
          f"p99 median {summary['p99_ms']['median']:.2f} ms, worst segment {summary['p99_ms']['max']:.2f} ms")
    print(f"record written to {args.json}")
    if unexpected or socket_errors or churn.failures or growth > 0.10:
        raise SystemExit("soak: FAILED (see above)")


if __name__ == "__main__":
    main()
