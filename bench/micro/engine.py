"""The HTTP engine (`gateway.http`) on its own, without the gateway: what serving costs, and what
serving plus forwarding through the engine's upstream client costs (run by hand).

    python bench/micro/engine.py                  # a tiny app answering from memory
    python bench/micro/engine.py --proxy          # the app forwards each request through UpstreamPool
    python bench/micro/engine.py -c 64 -d 10      # connections, seconds

The engine runs in a process of its own (uvloop, plain HTTP on 127.0.0.1); the load comes from
this process (an asyncio client, keep-alive, one request at a time per connection), and with
`--proxy` the upstream is a third process serving the same tiny app. Printed: requests/s, and the
engine process's CPU time per request (from /proc), the figure that holds steady on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.http.connection import Limits  # noqa: E402
from gateway.http.messages import Request, Response  # noqa: E402
from gateway.http.server import HttpServer  # noqa: E402
from gateway.http.upstream import UpstreamPool  # noqa: E402

BODY = b'{"ok":true,"items":[1,2,3],"note":"a small JSON answer, as most API calls get"}'
REQUEST = b"GET /api/v1/items HTTP/1.1\r\nHost: bench\r\nUser-Agent: engine-bench\r\nAccept: */*\r\n\r\n"


class Origin:
    scheme, host = "http", "127.0.0.1"

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"


async def hello(request: Request) -> Response:
    return Response(200, {"Content-Type": "application/json"}, BODY)


def forwarding(port: int) -> Callable[[Request], Awaitable[Response]]:
    """The engine's both sides: each request goes to the upstream on a pooled connection."""
    pool = UpstreamPool(keepalive=30, connect_timeout=5)
    origin = Origin(port)
    head = b"GET /api/v1/items HTTP/1.1\r\nHost: upstream\r\n\r\n"

    async def app(request: Request) -> Response:
        conn = pool.idle(origin) or await pool.connect(origin, 5)
        conn.begin(False)
        conn.arm(5)
        conn.write(head)
        await conn.response_head()
        conn.disarm()
        parts = [conn.take()]
        while not conn.complete and (chunk := await conn.read(5)):
            parts.append(chunk)
        pool.release(origin, conn)
        return Response(conn.status, {"Content-Type": "application/json"}, b"".join(parts))

    return app


def serve(sock: socket.socket, upstream_port: int | None) -> None:
    import uvloop

    async def main() -> None:
        app = forwarding(upstream_port) if upstream_port else hello
        server = HttpServer(app, Limits())
        await server.start(sock, None)
        await asyncio.Event().wait()

    uvloop.run(main())


def start(upstream_port: int | None = None) -> tuple[multiprocessing.process.BaseProcess, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    process = multiprocessing.get_context("fork").Process(target=serve, args=(sock, upstream_port), daemon=True)
    process.start()
    port = int(sock.getsockname()[1])
    sock.close()  # the child holds it
    return process, port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, connections: int, seconds: float) -> int:
    done = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        tail = b"\r\n\r\n" + BODY
        while time.perf_counter() < deadline:
            writer.write(REQUEST)
            await reader.readuntil(tail)
            done += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxy", action="store_true", help="forward each request to an upstream process")
    parser.add_argument("-c", type=int, default=32, help="client connections")
    parser.add_argument("-d", type=float, default=5.0, help="seconds of load")
    args = parser.parse_args()
    children = []
    upstream_port = None
    if args.proxy:
        upstream, upstream_port = start()
        children.append(upstream)
    engine, port = start(upstream_port)
    children.append(engine)
    try:
        asyncio.run(load(port, 4, 0.5))  # warm up: connections made, code paths hot
        pid = engine.pid
        assert pid is not None
        before = cpu_seconds(pid)
        started = time.perf_counter()
        n = asyncio.run(load(port, args.c, args.d))
        elapsed = time.perf_counter() - started
        used = cpu_seconds(pid) - before
        what = "serve + forward (engine both sides)" if args.proxy else "serve from memory"
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {args.c} connections, {args.d:g} s")
        print(f"{what:<40} {n / elapsed:10,.0f} req/s {used / n * 1e6:8.1f} µs engine CPU/request")
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()
