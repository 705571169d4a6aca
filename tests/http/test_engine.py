"""The HTTP engine on its own: a tiny application served by `gateway.http`, no gateway around it.

What an application author would notice: answers, keep-alive and pipelining, the contract's JSON
refusal for a malformed request, bodies read and streamed both ways, and flow control that waits
for a slow peer and carries on, every byte intact, once the peer catches up (both sides: the
client connection and the upstream client).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from gateway.http.connection import Limits
from gateway.http.messages import Request, Response
from gateway.http.server import HttpServer
from gateway.http.upstream import UpstreamPool

App = Callable[[Request], Awaitable[Response]]
BIG = 16 * 1024 * 1024  # far past every buffer on the way (transport, kernel): flow control must act
CHUNK = 64 * 1024
PATTERN = bytes(range(256)) * (CHUNK // 256)
WHOLE = PATTERN * (BIG // CHUNK)  # bytes that show a lost, repeated or reordered piece


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    server_name: str | None = None

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pool_key(self) -> tuple[object, ...]:
        return (self.scheme, self.host, self.port)


def small_buffers(sock: socket.socket) -> None:
    """Kernel buffers kept small, so that a peer that stops reading is felt within a few hundred KB."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    small_buffers(sock)  # inherited by accepted connections
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[HttpServer, int]]]]:
    servers: list[HttpServer] = []

    async def start(app: App, limits: Limits | None = None) -> tuple[HttpServer, int]:
        sock = listening_socket()
        server = HttpServer(app, limits or Limits())
        await server.start(sock, None)
        servers.append(server)
        return server, sock.getsockname()[1]

    yield start
    for server in servers:
        await server.shutdown(1.0)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    small_buffers(sock)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, limit=CHUNK)


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
    return int(status_line.split()[1]), headers, body


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most 10 s) for a state the event loop reaches by itself."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), what


async def hello(request: Request) -> Response:
    body = b""
    while chunk := await request.content.readany():
        body += chunk
    return Response(200, {"Content-Type": "text/plain"}, f"{request.method} {request.raw_path} {len(body)}".encode())


async def test_a_tiny_app_answers_keep_alive_and_pipelined_requests_in_order(serve) -> None:
    _, port = await serve(hello)
    reader, writer = await connect(port)
    writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await read_answer(reader)
    assert (status, body) == (200, b"GET /one 0")
    assert headers["content-type"] == "text/plain" and "date" in headers and "connection" not in headers
    writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                 b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_answer(reader))[::2] == (200, b"GET /a 0")
    assert (await read_answer(reader))[::2] == (200, b"POST /b 5")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 9\r\n" in head  # HEAD: no body follows
    writer.write(b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = await read_answer(reader)
    assert (status, headers["connection"], body) == (200, "close", b"GET /d 0")
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, as asked
    writer.close()


async def test_a_malformed_request_gets_the_contracts_json_400_and_the_connection_closes(serve) -> None:
    seen: list[str] = []

    async def app(request: Request) -> Response:
        seen.append(request.raw_path)
        return await hello(request)

    _, port = await serve(app)
    reader, writer = await connect(port)
    writer.write(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert (await read_answer(reader))[::2] == (200, b"GET /fine 0")
    status, headers, body = await read_answer(reader)
    assert (status, headers["connection"], headers["content-type"]) == (400, "close", "application/json")
    assert json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert seen == ["/fine"]  # the ambiguous request never reached the application
    writer.close()


async def test_a_client_slow_to_read_a_download_holds_the_writer_until_it_catches_up(serve) -> None:
    """Client-side write flow control: the application's writes wait while the client takes
    nothing (what is buffered stays bounded), and go on when it reads again."""
    written = 0

    async def download(request: Request) -> Response:
        nonlocal written
        request.start_stream(200, None, {"Content-Length": str(BIG)})
        while written < BIG:
            await request.write(PATTERN)
            written += len(PATTERN)
        request.write_eof()
        return Response(200, sent=True)

    server, port = await serve(download, Limits(send_timeout=60))
    reader, writer = await connect(port)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await until(lambda: any(c._write_paused for c in server.connections), "writes paused")  # white box
    assert written < BIG // 4  # held back, not buffered whole
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    received = 0
    async with asyncio.timeout(30):  # without a resumed writer this waits for the 60 s send timeout
        while received < BIG:
            chunk = await reader.read(CHUNK)
            assert chunk, "connection closed mid-body"
            assert chunk == WHOLE[received:received + len(chunk)]
            received += len(chunk)
    assert received == written == BIG
    writer.close()


async def test_an_app_slow_to_read_an_upload_pauses_the_client_and_then_gets_every_byte(serve) -> None:
    """Client-side read flow control: an unread body stops the connection's reads (the client's
    own writes back up) rather than being buffered whole; reading it resumes them."""
    go = asyncio.Event()

    async def upload(request: Request) -> Response:
        await go.wait()
        received = 0
        while chunk := await request.content.readany():
            assert chunk == WHOLE[received:received + len(chunk)]
            received += len(chunk)
        return Response(200, {}, str(received).encode())

    server, port = await serve(upload)
    reader, writer = await connect(port)
    writer.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BIG)
    sending = asyncio.create_task(send_all(writer, BIG))
    await until(lambda: any(c._read_paused for c in server.connections), "reads paused")
    (conn,) = server.connections
    assert conn._parsing is not None and conn._parsing.content.buffered < BIG // 4
    assert not sending.done()  # the client is held back by the kernel, not the gateway's memory
    go.set()
    await asyncio.wait_for(sending, 30)
    status, _, body = await read_answer(reader)
    assert (status, body) == (200, str(BIG).encode())
    writer.close()


async def send_all(writer: asyncio.StreamWriter, size: int) -> None:
    sent = 0
    while sent < size:
        writer.write(PATTERN)
        await writer.drain()
        sent += len(PATTERN)


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """A plain asyncio server; the test's `handle(reader, writer)` plays the upstream."""
    servers: list[asyncio.Server] = []

    async def start(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> int:
        sock = listening_socket()
        server = await asyncio.start_server(handle, sock=sock, limit=CHUNK)
        servers.append(server)
        return int(sock.getsockname()[1])

    yield start
    for server in servers:
        server.close()


async def test_an_upstream_slow_to_read_a_request_body_holds_drain_until_it_catches_up(raw_upstream) -> None:
    """Upstream-side write flow control: `drain` waits while the upstream reads nothing, and
    returns once it does; every byte arrives in order."""
    go = asyncio.Event()
    got = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await go.wait()
        got.extend(await reader.readexactly(BIG))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    port = await raw_upstream(handle)
    pool = UpstreamPool(keepalive=30, connect_timeout=5)
    conn = await pool.connect(Origin("http", "127.0.0.1", port), 5)
    conn.begin(False)
    conn.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BIG)
    sent = 0
    while not conn._write_paused:  # white box: write until the transport asks to stop
        conn.write(PATTERN)
        sent += len(PATTERN)
        assert sent < BIG // 4, "never paused"
    drained = asyncio.create_task(conn.drain())
    await asyncio.sleep(0)
    assert not drained.done()
    go.set()
    await asyncio.wait_for(drained, 10)  # without a woken writer this never returns
    while sent < BIG:
        conn.write(PATTERN)
        sent += len(PATTERN)
        await asyncio.wait_for(conn.drain(), 10)
    await asyncio.wait_for(conn.response_head(), 10)
    assert conn.status == 204 and bytes(got) == WHOLE
    await pool.close()


async def test_an_unread_upstream_response_pauses_reading_and_is_whole_once_taken(raw_upstream) -> None:
    """Upstream-side read flow control: a body nobody takes stops the connection's reads at the
    high-water mark; taking it resumes them, and the connection is reusable after."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
            for _ in range(BIG // CHUNK):
                writer.write(PATTERN)
                await writer.drain()

    origin = Origin("http", "127.0.0.1", await raw_upstream(handle))
    pool = UpstreamPool(keepalive=30, connect_timeout=5)
    conn = await pool.connect(origin, 5)
    conn.begin(False)
    conn.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(conn.response_head(), 10)
    await until(lambda: conn._read_paused, "reads paused")
    assert not conn.complete
    body = bytearray()
    while chunk := await conn.read(10):
        body += chunk
    assert bytes(body) == WHOLE
    assert conn.reusable
    pool.release(origin, conn)
    assert pool.idle(origin) is conn
    await pool.close()
