"""A flood of random API keys next to a valid one: does the valid key slow down, does memory grow?

    python bench/flood.py                    # needs nginx (apt-get install nginx)
    python bench/flood.py --seconds 30 --connections 64

One `gateway run` as shipped on CPU 1 (nginx upstream and both clients on CPU 0). Open-loop
latency of a valid, cached key at `--rate` (openloop.py) is measured twice: alone, then while
`--connections` keep-alive connections send well-formed keys that exist nowhere (right prefix and
checksum, so each costs a store lookup), as fast as the gateway answers them. Reports both
latencies, the flood's rate and statuses, and the gateway's RSS before and after. As shipped,
answers past `ratelimit.failed_auth_per_minute` wait `failed_auth_delay` (the flood shares
127.0.0.1 with the valid key); `--no-hold` measures the gateway answering every wrong key at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from run import GatewayProcess, openloop, start_upstream  # noqa: E402
from soak import rss_kib  # noqa: E402

from gateway.credentials.keyformat import generate_key  # noqa: E402


async def flood(port: int, seconds: float, connections: int, sources: int = 1) -> dict[str, int]:
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def one_connection(n: int) -> None:
        # --sources: the connections come from 127.0.0.2, .3, ... (one client address each), as a
        # flood spread over many addresses would; 1 keeps them on 127.0.0.1 with the valid key
        local = (f"127.0.0.{2 + n % sources}", 0) if sources > 1 else None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls, local_addr=local)
        while loop.time() < end:
            key = generate_key("gw", "live")
            writer.write(f"GET /api HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:")
            await reader.readexactly(length)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(one_connection(n) for n in range(connections)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500, help="valid-key requests/s, open loop")
    parser.add_argument("--sources", type=int, default=1, help="client addresses the flood comes from (127.0.0.2...)")
    parser.add_argument("--no-hold", action="store_true",
                        help="ratelimit.failed_auth_per_minute: 0 (every wrong key answered at once, as before)")
    args = parser.parse_args()
    cpu = 0 if shutil.which("taskset") else None
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        upstream = start_upstream(stack, root, cpu)
        limits = {"backend": "memory", **({"failed_auth_per_minute": 0} if args.no_hold else {})}
        gateway = GatewayProcess(root, "flood", upstream, limits, 1 if cpu is not None else None)
        stack.enter_context(gateway.running())
        key, _ = gateway.credentials()
        header = f"X-API-Key: {key}"
        alone = openloop(gateway.url("/api"), header, args.rate, int(args.seconds), cpu)
        rss_before = rss_kib(gateway.pid)
        result: dict[str, dict[int, int]] = {}

        def run_flood() -> None:
            result["statuses"] = asyncio.run(flood(gateway.port, args.seconds + 2, args.connections, args.sources))

        flooding = threading.Thread(target=run_flood)
        flooding.start()  # the flood runs in this process; openloop.py in its own, both on CPU 0
        during = openloop(gateway.url("/api"), header, args.rate, int(args.seconds), cpu)
        flooding.join()
        rss_after = rss_kib(gateway.pid)
        metrics = subprocess.run(["curl", "-s", f"http://127.0.0.1:{gateway.admin}/metrics"],
                                 capture_output=True, text=True).stdout
    sizes = [line for line in metrics.splitlines() if line.startswith(
        ("gateway_key_cache_size", "gateway_key_cache_misses_total", "gateway_auth_failures_held_total"))]
    statuses = result.get("statuses", {})
    total = sum(statuses.values())
    print(json.dumps({"valid_key_alone": alone, "valid_key_during_flood": during,
                      "flood": {"requests": total, "rate": total / (args.seconds + 2), "statuses": statuses},
                      "rss_mib": {"before": rss_before / 1024, "after": rss_after / 1024}, "cache": sizes}, indent=1))


if __name__ == "__main__":
    main()
