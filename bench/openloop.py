"""Latency at a fixed offered rate, open loop: requests are due on a fixed schedule whatever the
answers do, and each latency is measured from when the request was due, so a stall shows up in
every request it delays (no coordinated omission, as in wrk2; Debian has no wrk2).

    python bench/openloop.py --url https://127.0.0.1:8443/api --rate 2000 --duration 10 \
        --header "X-API-Key: gw_live_..."

Keep-alive connections (HTTP/1.1, TLS for https URLs, certificates not checked: loopback bench)
are opened up front; a request due while all are busy waits for one, and that wait counts.
Prints one JSON object: achieved rate, p50/p90/p99/max in ms, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import ssl
import statistics
import sys
import time
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # pragma: no cover - the gateway's own install brings it
    uvloop = None


async def open_connections(url: str, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    parts = urlsplit(url)
    tls = None
    if parts.scheme == "https":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    port = parts.port or (443 if tls else 80)
    return [await asyncio.open_connection(parts.hostname, port, ssl=tls) for _ in range(count)]


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length is None:
        raise RuntimeError("response without Content-Length: the bench targets answer with one")
    await reader.readexactly(length)
    return status


async def run(url: str, headers: list[str], rate: float, duration: float, connections: int) -> dict[str, float]:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", *headers, "", ""]
    request = "\r\n".join(lines).encode("latin-1")
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for conn in await open_connections(url, connections):
        idle.put_nowait(conn)
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # uvloop's loop.time() moves in whole milliseconds
    latencies: list[float] = []
    errors = 0

    total = int(rate * duration)
    if total < 1:
        raise SystemExit("openloop: rate x duration must be at least one request")
    finished = 0
    all_done = asyncio.Event()
    failure: BaseException | None = None

    async def one(due: float) -> None:
        nonlocal errors, finished, failure
        try:
            reader, writer = await idle.get()
            try:
                status = await exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError):
                errors += 1
                writer.close()
                [fresh] = await open_connections(url, 1)
                idle.put_nowait(fresh)
                return
            latencies.append(clock() - due)
            if status >= 400:
                errors += 1
            idle.put_nowait((reader, writer))
        except BaseException as exc:  # e.g. the target gone for good: the run fails, it does not hang
            failure = failure or exc
            all_done.set()
            raise
        finally:
            finished += 1
            if finished == total:
                all_done.set()

    interval = 1.0 / rate
    start = clock() + 0.05
    tasks: list[asyncio.Task[None]] = []
    sent = 0
    while sent < total:
        now = clock()
        due_now = min(total, int((now - start) / interval) + 1) if now >= start else 0
        while sent < due_now:  # everything due by now leaves now, stamped with its own due time
            tasks.append(loop.create_task(one(start + sent * interval)))
            sent += 1
        await asyncio.sleep(min(0.001, max(0.0, start + sent * interval - clock())))
    # Not `gather(*tasks)`: setting it up over every task at once held this loop for ~40 ms while
    # the last requests were due, which then showed as the run's maximum latency.
    await all_done.wait()
    if failure is not None:
        raise failure
    elapsed = clock() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "offered_rps": rate, "achieved_rps": len(latencies) / elapsed, "requests": len(latencies), "errors": errors,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": latencies[-1] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second, offered on a fixed schedule")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()
    gc.collect()
    gc.disable()  # the client's own collector pauses would be counted as the target's latency
    result = asyncio.run(run(args.url, args.header, args.rate, args.duration, args.connections))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
