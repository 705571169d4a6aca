"""The compiled build against pure Python: two installs of the same commit, rounds interleaved.

    python -m venv /tmp/pure && /tmp/pure/bin/pip install -q '.[redis]'
    python -m venv /tmp/compiled && GATEWAY_COMPILE=1 /tmp/compiled/bin/pip install -q '.[redis]'
    python bench/compiled.py --pure /tmp/pure --compiled /tmp/compiled --rounds 4

Each side runs its venv's own `gateway` script (never `python -m gateway`, which would import the
checkout's sources from the working directory), checked first with `gateway --version`. The
rest is ab.py's method: wrk and the nginx upstream on CPU 0, the gateway alone on CPU 1, the
API-key route by default; per side and round req/s and the CPU time of the event-loop thread per
request; then the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import ab
import run as R


def use_venv(venv: Path) -> None:
    """Make `GatewayProcess` start `venv`'s gateway script instead of `python -m gateway`."""
    original = R.pinned
    script = str(venv / "bin" / "gateway")

    def pinned(cpu: int | None, argv: list[str]) -> list[str]:
        if argv[1:3] == ["-m", "gateway"]:
            argv = [script, *argv[3:]]
        return original(cpu, argv)

    R.pinned = pinned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pure", type=Path, required=True, help="a venv with the pure-Python install")
    parser.add_argument("--compiled", type=Path, required=True, help="a venv with GATEWAY_COMPILE=1's install")
    parser.add_argument("--path", default="/api", choices=["/api", "/public"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    venvs = {"pure": args.pure.resolve(), "compiled": args.compiled.resolve()}
    for side, venv in venvs.items():
        version = subprocess.run([str(venv / "bin" / "gateway"), "--version"], capture_output=True, text=True,
                                 check=True, cwd=tempfile.gettempdir()).stdout.strip()
        print(f"{side:8s} {venv}: {version}")
        if ("compiled:" in version) != (side == "compiled"):
            sys.exit(f"{venv} does not hold the {side} build")
    results: dict[str, list[tuple[float, float]]] = {side: [] for side in venvs}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        upstream = R.start_upstream(stack, root, 0)
        for round_no in range(1, args.rounds + 1):
            for side, venv in venvs.items():
                saved = R.pinned
                use_venv(venv)
                try:
                    gw = R.GatewayProcess(root, f"{side}{round_no}", upstream, {"backend": "memory"}, 1)
                    with gw.running():
                        header = f"X-API-Key: {gw.credentials()[0]}" if args.path == "/api" else None
                        rps, cpu, _ = ab.measure(gw, args.path, header, args.duration)
                finally:
                    R.pinned = saved
                results[side].append((rps, cpu))
                print(f"  round {round_no}  {side:8s}  {rps:9,.0f} req/s  {cpu:6.1f} µs CPU/req (event loop)", flush=True)
    rps = {side: statistics.median(r for r, _ in rows) for side, rows in results.items()}
    cpu = {side: statistics.median(c for _, c in rows) for side, rows in results.items()}
    print(f"\nmedians: pure {rps['pure']:,.0f} req/s {cpu['pure']:.1f} µs; compiled {rps['compiled']:,.0f} req/s "
          f"{cpu['compiled']:.1f} µs; CPU per request {100 * (cpu['compiled'] / cpu['pure'] - 1):+.1f} %, "
          f"req/s {100 * (rps['compiled'] / rps['pure'] - 1):+.1f} %")


if __name__ == "__main__":
    sys.exit(main())
