"""Slow clients: heads sent a byte at a time (slowloris), bodies that stall. Each is cut by its
timeout with a JSON 408, and many of them at once do not hold up normal traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from typing import Any

from tests.conftest import proxy_url
from tests.proxy.scripted import ok
from tests.proxy.test_forwarding import public_route
from tests.proxy.test_hostile_http import parse

HEAD = b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"


async def connect(gw: Any, client_ssl: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gw.proxy_port, ssl=client_ssl, server_hostname="127.0.0.1")


async def answer_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the gateway sends until it closes the connection."""
    data = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 10):
        data += chunk
    return data


def assert_timeout_answer(answer: bytes) -> None:
    status, headers, body = parse(answer)
    assert status == 408, answer
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == "REQUEST_TIMEOUT"
    assert headers["x-request-id"] and headers["server"] == "gateway"


async def drip(writer: asyncio.StreamWriter, data: bytes, interval: float) -> None:
    """A slowloris client: one byte per interval, until the gateway closes the connection."""
    try:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)
    except (ConnectionError, RuntimeError):
        return


async def test_a_head_sent_byte_by_byte_is_cut_at_the_header_timeout(start_gateway, scripted, client_ssl) -> None:
    script = await scripted()
    gw = await start_gateway(routes=[public_route(script.url)],
                             server={"header_timeout": 0.5, "keepalive_timeout": 75})
    reader, writer = await connect(gw, client_ssl)
    started = time.monotonic()
    dripping = asyncio.create_task(drip(writer, HEAD, 0.05))
    answer = await answer_until_closed(reader)
    elapsed = time.monotonic() - started
    dripping.cancel()
    writer.close()
    assert_timeout_answer(answer)
    assert elapsed < 5  # the head deadline cut it, not the 75 s keep-alive timer
    assert script.requests == []


async def test_a_connection_that_never_sends_a_request_is_closed(start_gateway, scripted, client_ssl) -> None:
    script = await scripted()
    gw = await start_gateway(routes=[public_route(script.url)], server={"header_timeout": 0.3})
    reader, writer = await connect(gw, client_ssl)
    assert_timeout_answer(await answer_until_closed(reader))
    writer.close()


async def test_keep_alive_requests_each_get_a_fresh_head_deadline(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"one"), ok(b"two"), ok(b"three"))
    # a second: a loaded machine's pause while a whole head is on its way does not reach it
    gw = await start_gateway(routes=[public_route(script.url)], server={"header_timeout": 1})
    reader, writer = await connect(gw, client_ssl)

    async def request(expected: bytes) -> None:
        writer.write(HEAD)
        with contextlib.suppress(ConnectionError):  # closed meanwhile: what it sent before says why
            await writer.drain()
        # the first bytes after the request: a 408 sent while idle would sit unread before them
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert await asyncio.wait_for(reader.readexactly(len(expected)), 5) == expected

    try:
        for expected in (b"one", b"two"):
            await request(expected)
        # idle between requests is the keep-alive timer's business, not the head deadline's: the
        # connection sent nothing meanwhile (no 408) and still serves the next request
        await asyncio.sleep(2)
        await request(b"three")
    finally:
        writer.close()


async def test_many_slowloris_connections_do_not_stop_normal_traffic(
    start_gateway, upstream, client_ssl, https
) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)], server={"header_timeout": 2})
    slow = [await connect(gw, client_ssl) for _ in range(100)]
    drips = [asyncio.create_task(drip(writer, HEAD, 0.1)) for _, writer in slow]
    try:
        for _ in range(20):
            async with https.get(proxy_url(gw, "/api/v1/visitors")) as resp:
                assert resp.status == 200
        answers = await asyncio.gather(*(answer_until_closed(reader) for reader, _ in slow))
        for answer in answers:
            assert_timeout_answer(answer)
    finally:
        for task in drips:
            task.cancel()
        for _, writer in slow:
            writer.close()
    async with https.get(proxy_url(gw, "/api/v1/visitors")) as resp:
        assert resp.status == 200


async def test_a_stalled_small_body_is_408_and_never_reaches_the_upstream(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)], server={"body_timeout": 0.5})
    reader, writer = await connect(gw, client_ssl)
    writer.write(b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    await writer.drain()
    assert_timeout_answer(await answer_until_closed(reader))
    writer.close()
    assert script.requests == []


async def test_a_stalled_streamed_body_is_408_and_the_upstream_request_is_cut(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)], server={"body_timeout": 0.5})
    reader, writer = await connect(gw, client_ssl)
    writer.write(b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await writer.drain()
    assert_timeout_answer(await answer_until_closed(reader))
    writer.close()
    await asyncio.wait_for(script.disconnected.wait(), 5)
    assert script.requests == []  # the upstream never saw a complete request


async def test_a_token_exchange_body_in_pieces_is_read_whole(start_gateway, client_ssl) -> None:
    gw = await start_gateway(server={"body_timeout": 5})
    body = json.dumps({"api_key": "gw_live_not_a_real_key"}).encode()
    reader, writer = await connect(gw, client_ssl)
    writer.write(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10]))
    await writer.drain()
    await asyncio.sleep(0.2)  # a slow client: the rest comes in a later TLS record
    writer.write(body[10:])
    await writer.drain()
    status, _, answer = parse(await asyncio.wait_for(reader.read(65536), 5))
    writer.close()
    # the whole JSON was read: the refusal is about the key, not a truncated body
    assert status == 401 and json.loads(answer)["error"]["code"] == "INVALID_CREDENTIALS"


async def test_a_refused_upload_read_to_its_end_leaves_the_keep_alive_connection_alone(
    start_gateway, scripted, client_ssl
) -> None:
    """aiohttp reads what is left of a body the gateway refused early; those bytes are not a slow
    request head, and the idle connection after them is the keep-alive timer's business."""
    script = await scripted(ok(b"after"))
    gw = await start_gateway(routes=[public_route(script.url, auth=["api_key_header"]),
                                     public_route(script.url, name="open", path="/open")],
                             server={"header_timeout": 1})  # not reached by a loaded machine's pause
    reader, writer = await connect(gw, client_ssl)
    try:
        writer.write(b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + b"a" * 10000)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 401")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await asyncio.wait_for(reader.readexactly(length), 5)
        writer.write(b"b" * 10000)  # the rest of the refused body
        await writer.drain()
        await asyncio.sleep(2)  # idle for twice the head deadline: the behaviour under test
        writer.write(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        writer.close()
