"""Faults in the middle of a body: an upstream that trickles bytes for ever, clients that go
away mid-upload or mid-download. Each is cut or cancelled, counted once, and logs no storm."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.proxy.test_forwarding import public_route
from tests.proxy.test_slow_clients import answer_until_closed, connect


class Trickle:
    """An upstream that sends its head at once, then one body byte every `interval`, for ever."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.cut = asyncio.Event()      # the gateway closed the connection
        self.requests = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n")
            while True:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(self.interval)  # the fault under test: a trickle, not synchronisation
                if reader.at_eof():
                    raise ConnectionResetError
        except (ConnectionError, asyncio.IncompleteReadError):
            self.cut.set()
        finally:
            writer.close()


@pytest.fixture
async def trickle() -> AsyncIterator[Trickle]:
    upstream = Trickle(0.05)
    upstream.server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    yield upstream
    upstream.server.close()


async def call_log(gw: Any) -> list[Any]:
    await gw.recorder.call_buffer.flush()
    return await gw.recorder.store.list_calls(cursor=None, newest_first=False, limit=100, key_id=None, status=None)


async def test_a_trickling_upstream_is_cut_at_the_route_timeout(start_gateway, trickle, client_ssl) -> None:
    gw = await start_gateway(routes=[public_route(trickle.url, timeout=0.5)])
    reader, writer = await connect(gw, client_ssl)
    started = time.monotonic()
    writer.write(b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(answer_until_closed(reader), 10)  # a regression fails, not hangs
    elapsed = time.monotonic() - started
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert 0 < len(body) < 100000  # cut: the client can tell the body is incomplete
    assert 0.4 < elapsed < 3  # at the route timeout, although a byte kept arriving
    await asyncio.wait_for(trickle.cut.wait(), 5)


async def test_a_client_leaving_mid_download_cancels_the_upstream_and_is_logged_once(
    start_gateway, trickle, client_ssl, caplog
) -> None:
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
    rows = await call_log(gw)
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
    rows = await call_log(gw)
    assert [row.status for row in rows] == [499]
