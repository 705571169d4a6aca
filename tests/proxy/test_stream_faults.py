"""Faults in the middle of a body: an upstream that trickles bytes for ever, clients that go
away mid-upload or mid-download. Each is cut or cancelled, counted once, and logs no storm."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.observability.test_metrics import samples, scrape
from tests.proxy.test_forwarding import public_route
from tests.proxy.test_slow_clients import answer_until_closed, connect


class Trickle:
    """An upstream that sends its head at once, then `chunk` body bytes every `interval`: for ever,
    or `chunks` times and the end; with `stall_after`, that many chunks then nothing (the
    connection held open); with `die_after`, that many chunks then the connection closed."""

    def __init__(self, interval: float, chunk: bytes = b"x", chunks: int | None = None,
                 stall_after: int | None = None, die_after: int | None = None) -> None:
        self.interval = interval
        self.chunk = chunk
        self.chunks = chunks
        self.stall_after = stall_after
        self.die_after = die_after
        self.cut = asyncio.Event()      # the gateway closed the connection
        self.requests = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    @property
    def length(self) -> int:
        return len(self.chunk) * (self.chunks or 100000)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % self.length)
            sent = 0
            while self.chunks is None or sent < self.chunks:
                if sent == self.die_after:
                    writer.transport.abort()
                    return
                if sent == self.stall_after:
                    await reader.read()  # nothing more is sent, until the gateway hangs up
                    raise ConnectionResetError
                writer.write(self.chunk)
                sent += 1
                await writer.drain()
                await asyncio.sleep(self.interval)  # the fault under test: a trickle, not synchronisation
                if reader.at_eof():
                    raise ConnectionResetError
            await reader.read()  # the whole body is out; the gateway may keep the connection
        except (ConnectionError, asyncio.IncompleteReadError):
            self.cut.set()
        finally:
            writer.close()


@pytest.fixture
async def trickle() -> AsyncIterator[Any]:
    servers: list[asyncio.Server] = []

    async def make(interval: float = 0.05, **kw: Any) -> Trickle:
        upstream = Trickle(interval, **kw)
        upstream.server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        servers.append(upstream.server)
        return upstream

    yield make
    for server in servers:
        server.close()


async def call_log(gw: Any) -> list[Any]:
    await gw.recorder.call_buffer.flush()
    return await gw.recorder.store.list_calls(cursor=None, newest_first=False, limit=100, key_id=None, status=None)


async def call_log_of(gw: Any, count: int) -> list[Any]:
    """The call log once it holds `count` rows: a request a client left is recorded as its handler
    unwinds, which may come a turn of the loop after the upstream saw the cut."""
    async def until() -> list[Any]:
        while len(rows := await call_log(gw)) < count:
            await asyncio.sleep(0.01)  # polling the recorded state, not standing in for an event
        return rows

    return await asyncio.wait_for(until(), 10)


async def download(gw: Any, client_ssl: Any) -> tuple[bytes, bytes, float]:
    """One GET read until the gateway closes; its head, its body and how long it took."""
    reader, writer = await connect(gw, client_ssl)
    started = time.monotonic()
    writer.write(b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(answer_until_closed(reader), 20)  # a regression fails, not hangs
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body, time.monotonic() - started


def upstream_errors(text: str) -> dict[str, float]:
    return {dict(labels)["kind"]: value for (name, labels), value in samples(text).items()
            if name == "gateway_upstream_errors_total"}


async def test_a_long_download_that_keeps_flowing_is_delivered_whole_past_the_route_timeout(
    start_gateway, trickle, client_ssl
) -> None:
    # 3 s of body, a chunk each 50 ms; the head comes at once, though a loaded machine may hold it
    # (or a chunk) for a second: neither wait comes near its timeout
    upstream = await trickle(0.05, chunk=b"y" * 4096, chunks=60)
    gw = await start_gateway(routes=[public_route(upstream.url, timeout=1, idle_timeout=5)])
    head, body, elapsed = await download(gw, client_ssl)
    assert head.startswith(b"HTTP/1.1 200") and body == b"y" * upstream.length
    assert elapsed > 2.5  # well past `timeout`, which bounds only the wait for the head
    [row] = await call_log_of(gw, 1)
    assert (row.status, row.error) == (200, None)
    assert upstream_errors(await scrape(gw)) == {}


@pytest.mark.parametrize("fault, kind, code", [("stall", "idle_timeout", "UPSTREAM_TIMEOUT"),
                                               ("die", "truncated", "UPSTREAM_UNAVAILABLE")])
async def test_a_body_cut_mid_way_is_a_cut_to_the_client_and_counted(
    start_gateway, trickle, client_ssl, fault, kind, code
) -> None:
    upstream = await trickle(0.01, chunk=b"z" * 1024, chunks=100, **{f"{fault}_after": 5})
    # idle_timeout well above the 10 ms between chunks, so a loaded machine's pause is not a stall
    gw = await start_gateway(routes=[public_route(upstream.url, timeout=30, idle_timeout=1)])
    head, body, elapsed = await download(gw, client_ssl)
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 102400" in head.lower()
    assert len(body) == 5 * 1024  # the client can tell: fewer bytes than its Content-Length, then the end
    if fault == "stall":
        assert 0.95 < elapsed < 15  # at the idle timeout, well before the route's 30 s
        await asyncio.wait_for(upstream.cut.wait(), 5)  # the upstream connection is closed too
    assert upstream_errors(await scrape(gw)) == {kind: 1}
    [row] = await call_log_of(gw, 1)  # what the client was told (200), and what happened to the body
    assert (row.status, row.error) == (200, code)


async def test_a_client_leaving_mid_download_cancels_the_upstream_and_is_logged_once(
    start_gateway, trickle, client_ssl, caplog
) -> None:
    trickle = await trickle()
    gw = await start_gateway(routes=[public_route(trickle.url, timeout=30)])
    caplog.clear()  # what start-up said (on PostgreSQL: the signing-key advice) is not the subject
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            trickle.cut.clear()
            reader, writer = await connect(gw, client_ssl)
            writer.write(b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            await asyncio.wait_for(reader.readexactly(3), 5)  # the download is under way
            writer.transport.abort()
            await asyncio.wait_for(trickle.cut.wait(), 5)  # the upstream connection goes too
    rows = await call_log_of(gw, 5)
    assert len(rows) == 5  # one row per request, none lost, none doubled
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("gateway")]


async def test_a_client_leaving_mid_upload_cancels_the_upstream_request(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await connect(gw, client_ssl)
    writer.write(b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await writer.drain()
    writer.transport.abort()  # half a body, then gone
    await asyncio.wait_for(script.disconnected.wait(), 5)  # the upstream request is cut, not left hanging
    assert script.requests == []  # it never looked complete to the upstream
    rows = await call_log_of(gw, 1)
    assert [row.status for row in rows] == [499]
