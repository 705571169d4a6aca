"""A/B of one change: the gateway at another commit against this checkout, rounds interleaved.

    python bench/ab.py --base HEAD~3            # API-key route, 3 rounds of 8 s each side
    python bench/ab.py --base main --path /public --rounds 5
    python bench/ab.py --base HEAD~1 --rate 8000   # open-loop latency at 8,000 req/s instead
    python bench/ab.py --base HEAD --base-ratelimit memory --ratelimit redis --rounds 4
                                                   # one checkout, the Redis limiter against memory
    python bench/ab.py --base HEAD~1 --this-config '{"portal": {"enabled": true}}'   # a feature on, this side
    python bench/ab.py --base main --query 'page=2&sort=name'   # requests with a short query string
    python bench/ab.py --base HEAD --this-config '{"call_log": {"writer": "process"}}' --gateway-cpus 1-2
                                                   # the call log's writer process with a core of its own

On a shared machine req/s drifts ±15–30 % between runs, more than most changes are worth; two
gateways measured in alternation, same upstream, same pinning as `run.py` (wrk and the nginx
upstream on CPU 0, the gateway alone on CPU 1), cancel the drift. The base commit is checked out
into a temporary git worktree and run from there (the editable install's import hook is taken
out of that process, so it imports the worktree's code). Reported per side and round: req/s and
the CPU time of the gateway's event-loop thread per request (`/proc/<pid>/task`), the steadier
figure, and of the whole process with its threads and child processes (the call log's writer);
then the medians and their ratio. With `--rate`, each round offers that many requests a
second on a fixed schedule (`openloop.py`, as `run.py` does) and reports p50 / p99 instead: for a
change meant for the tail, which closed-loop throughput does not see; and the CPU per request
at that fixed load (on a busy machine a low rate, which both sides sustain, compares the
work per request more fairly than wrk's throughput, which the neighbours decide).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import run as R

ROOT = Path(__file__).resolve().parent.parent
LIMITERS: dict[str, dict[str, object]] = {
    "memory": {"backend": "memory"},
    "redis": {"backend": "redis"},
    "redis-exact": {"backend": "redis", "redis_leases": False},  # a Redis step per decision
}


def loop_thread_cpu(pid: int) -> float:
    """CPU seconds of the process's main thread (the event loop), not its SQLite threads."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of the process, all its threads, and its live children (a call-log writer)."""
    total = R.cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += tree_cpu(int(child))
            except FileNotFoundError:  # exited meanwhile
                pass
    return total


def from_worktree(tree: Path) -> None:
    """Make `GatewayProcess` start the gateway from `tree` instead of the installed checkout."""
    original = R.pinned
    boot = ("import runpy, sys; sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
            f"sys.path.insert(0, {str(tree)!r}); import gateway; "
            f"assert gateway.__file__.startswith({str(tree)!r}), gateway.__file__; "
            "sys.argv[0] = 'gateway'; runpy.run_module('gateway', run_name='__main__')")

    def pinned(cpu: int | str | None, argv: list[str]) -> list[str]:
        if argv[1:3] == ["-m", "gateway"]:
            argv = [argv[0], "-c", boot, *argv[3:]]
        return original(cpu, argv)

    R.pinned = pinned


def measure(gw: R.GatewayProcess, path: str, header: str | None, seconds: int) -> tuple[float, float, float]:
    argv = ["wrk", "-t1", "-c64", f"-d{seconds}s", gw.url(path), *(["-H", header] if header else [])]
    before, before_all = loop_thread_cpu(gw.pid), tree_cpu(gw.pid)
    out = subprocess.run(R.pinned(0, argv), capture_output=True, text=True, check=True).stdout
    used, used_all = loop_thread_cpu(gw.pid) - before, tree_cpu(gw.pid) - before_all
    rps = float(out.split("Requests/sec:")[1].split()[0])
    return rps, used / (rps * seconds) * 1e6, used_all / (rps * seconds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare this checkout against")
    parser.add_argument("--path", default="/api", choices=["/api", "/public"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rate", type=float, help="open loop at this many req/s: p50 / p99 instead of req/s and CPU")
    parser.add_argument("--ratelimit", choices=sorted(LIMITERS), default="memory",
                        help="the limiter of this side (redis: leased permits; redis-exact: a Redis step per request)")
    parser.add_argument("--base-ratelimit", choices=sorted(LIMITERS), help="the base side's limiter (default: --ratelimit)")
    parser.add_argument("--this-config", type=json.loads, default={}, metavar="JSON",
                        help="config sections for this checkout's side only (a feature the base lacks), "
                        "e.g. '{\"portal\": {\"enabled\": true}}'")
    parser.add_argument("--query", default="", help="a query string (without ?) every request carries")
    parser.add_argument("--gateway-cpus", default="1", metavar="LIST",
                        help="the CPUs the gateway runs on (taskset -c), e.g. 1-3 where a call-log writer "
                        "process should have a core beside the event loop's; wrk and the upstream keep CPU 0")
    args = parser.parse_args()
    target = f"{args.path}?{args.query}" if args.query else args.path
    two = (os.cpu_count() or 1) >= 2
    results: dict[str, list[tuple[float, float]]] = {"base": [], "this": []}
    totals: dict[str, list[float]] = {"base": [], "this": []}
    loops: dict[str, list[float]] = {"base": [], "this": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tree = root / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.base], check=True)
        stack.callback(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
        upstream = R.start_upstream(stack, root, 0 if two else None)
        for round_no in range(1, args.rounds + 1):
            for side in ("base", "this"):
                saved = R.pinned
                if side == "base":
                    from_worktree(tree)
                try:
                    limiter = args.ratelimit if side == "this" else (args.base_ratelimit or args.ratelimit)
                    ratelimit = {**LIMITERS[limiter]}
                    if ratelimit["backend"] == "redis":
                        ratelimit["redis_prefix"] = f"gw:bench:{os.getpid()}:{side}{round_no}:"
                    gw = R.GatewayProcess(root, f"{side}{round_no}", upstream, ratelimit,
                                          args.gateway_cpus if two else None,
                                          extra=args.this_config if side == "this" else None)
                    with gw.running():
                        header = f"X-API-Key: {gw.credentials()[0]}" if args.path == "/api" else None
                        if args.rate:
                            before, before_all = loop_thread_cpu(gw.pid), tree_cpu(gw.pid)
                            latency = R.openloop(gw.url(target), header, args.rate, args.duration, 0 if two else None)
                            served = latency["achieved_rps"] * args.duration
                            cpu = (loop_thread_cpu(gw.pid) - before) / served * 1e6
                            total = (tree_cpu(gw.pid) - before_all) / served * 1e6
                        else:
                            rps, cpu, total = measure(gw, target, header, args.duration)
                finally:
                    R.pinned = saved
                if args.rate:
                    results[side].append((latency["p50_ms"], latency["p99_ms"]))
                    totals[side].append(total)
                    loops[side].append(cpu)
                    print(f"  round {round_no}  {side:4s}  p50 {latency['p50_ms']:6.3f} ms  p99 {latency['p99_ms']:7.2f} ms"
                          f"  max {latency['max_ms']:7.1f} ms  ({latency['achieved_rps']:,.0f} req/s)"
                          f"  {cpu:6.1f} µs CPU/req (event loop)  {total:6.1f} µs (process and children)", flush=True)
                    continue
                results[side].append((rps, cpu))
                totals[side].append(total)
                print(f"  round {round_no}  {side:4s}  {rps:9,.0f} req/s  {cpu:6.1f} µs CPU/req (event loop)"
                      f"  {total:6.1f} µs (process and children)", flush=True)
    if args.rate:
        p50s = {side: statistics.median(p50 for p50, _ in rows) for side, rows in results.items()}
        p99s = {side: statistics.median(p99 for _, p99 in rows) for side, rows in results.items()}
        print(f"\nmedians at {args.rate:,.0f} req/s: base p50 {p50s['base']:.3f} / p99 {p99s['base']:.2f} ms; "
              f"this p50 {p50s['this']:.3f} / p99 {p99s['this']:.2f} ms")
        print(f"CPU per request at that rate: event loop base {statistics.median(loops['base']):.1f} µs, "
              f"this {statistics.median(loops['this']):.1f} µs; process and children base "
              f"{statistics.median(totals['base']):.1f} µs, this {statistics.median(totals['this']):.1f} µs")
        return
    base_cpu = statistics.median(cpu for _, cpu in results["base"])
    this_cpu = statistics.median(cpu for _, cpu in results["this"])
    base_rps = statistics.median(rps for rps, _ in results["base"])
    this_rps = statistics.median(rps for rps, _ in results["this"])
    print(f"\nmedians: base {base_rps:,.0f} req/s {base_cpu:.1f} µs; this {this_rps:,.0f} req/s {this_cpu:.1f} µs; "
          f"CPU per request {100 * (this_cpu / base_cpu - 1):+.1f} %, req/s {100 * (this_rps / base_rps - 1):+.1f} %")
    base_all, this_all = statistics.median(totals["base"]), statistics.median(totals["this"])
    print(f"process and children: base {base_all:.1f} µs, this {this_all:.1f} µs per request, "
          f"{100 * (this_all / base_all - 1):+.1f} %")


if __name__ == "__main__":
    sys.exit(main())
