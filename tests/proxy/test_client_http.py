"""The client side of the proxy listener as HTTP/1.1 clients meet it: pipelining, HTTP/1.0,
keep-alive and its end, upgrade requests, protocol versions (raw TLS sockets)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.proxy.scripted import ok
from tests.proxy.test_forwarding import public_route
from tests.proxy.test_hostile_http import exchange, parse
from tests.proxy.test_slow_clients import answer_until_closed, connect


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body, leaving the connection where the next begins."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, headers, _ = parse(head)
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return status, headers, body


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    return "\r\n".join([f"GET {path} HTTP/{version}", "Host: x", *extra, "", ""]).encode()


async def test_pipelined_requests_are_answered_in_order(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"one"), ok(b"two"), ok(b"three"))
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await connect(gw, client_ssl)
    try:
        writer.write(get("/api/v1/visitors/1") + get("/api/v1/visitors/2") + get("/api/v1/visitors/3"))
        answers = [await read_response(reader) for _ in range(3)]
    finally:
        writer.close()
    assert [body for _, _, body in answers] == [b"one", b"two", b"three"]
    assert [r.split(b" ")[1] for r in script.requests] == [b"/api/v1/visitors/1", b"/api/v1/visitors/2",
                                                            b"/api/v1/visitors/3"]


async def test_nothing_after_a_malformed_pipelined_request_is_read(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"one"), ok(b"never"), ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    smuggled = b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    answer = await exchange(gw, client_ssl, get("/api/v1/visitors/1") + smuggled + get("/api/v1/visitors/3"))
    assert answer.startswith(b"HTTP/1.1 200")
    assert len(script.requests) == 1


async def test_http_1_0_is_answered_then_closed_unless_kept_alive(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"one"), ok(b"two"), ok(b"three"))
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await connect(gw, client_ssl)
    writer.write(get("/api/v1/visitors", version="1.0"))
    status, headers, body = parse(await answer_until_closed(reader))
    writer.close()
    assert (status, body, headers["connection"]) == (200, b"one", "close")

    reader, writer = await connect(gw, client_ssl)
    try:
        for expected in (b"two", b"three"):
            writer.write(get("/api/v1/visitors", "Connection: keep-alive", version="1.0"))
            status, headers, body = await read_response(reader)
            assert (status, body, headers["connection"]) == (200, expected, "keep-alive")
    finally:
        writer.close()


async def test_a_body_without_length_reaches_an_http_1_0_client_ending_with_the_connection(
    start_gateway, upstream, client_ssl
) -> None:
    url, _ = upstream
    gw = await start_gateway(routes=[public_route(url, path="/stream", name="stream")])
    reader, writer = await connect(gw, client_ssl)
    writer.write(get("/stream?size=300000", version="1.0"))
    answer = await answer_until_closed(reader)
    writer.close()
    status, headers, body = parse(answer)
    assert status == 200 and "transfer-encoding" not in headers and "content-length" not in headers
    assert body == (bytes(range(256)) * 256 * 5)[:300000]


async def test_an_idle_keep_alive_connection_is_closed_without_an_answer(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"one"))
    gw = await start_gateway(routes=[public_route(script.url)], server={"keepalive_timeout": 0.3})
    reader, writer = await connect(gw, client_ssl)
    try:
        writer.write(get("/api/v1/visitors"))
        assert (await read_response(reader))[2] == b"one"
        assert await answer_until_closed(reader) == b""  # closed quietly: no 408 for a client at rest
    finally:
        writer.close()


@pytest.mark.parametrize("line", [b"GET /api/v1/visitors\r\n\r\n", b"GET /api/v1/visitors HTTP/1.2\r\nHost: x\r\n\r\n",
                                  b"GET /api/v1/visitors HTTP/2.0\r\nHost: x\r\n\r\n"])
async def test_only_http_1_0_and_1_1_are_served(start_gateway, scripted, client_ssl, line) -> None:
    script = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    status, headers, body = parse(await exchange(gw, client_ssl, line))
    assert status == 400 and json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert script.requests == []


async def test_an_upgrade_request_is_answered_as_plain_http_then_closed(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"plain"), ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await connect(gw, client_ssl)
    writer.write(get("/api/v1/visitors", "Connection: Upgrade", "Upgrade: websocket") + get("/api/v1/visitors/2"))
    answer = await answer_until_closed(reader)
    writer.close()
    status, headers, body = parse(answer)
    assert (status, body, headers["connection"]) == (200, b"plain", "close")
    assert len(script.requests) == 1 and b"upgrade" not in script.requests[0].lower()


async def test_an_upgrade_request_with_a_body_is_refused(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    raw = (b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Content-Length: 3\r\n\r\nabc")
    status, _, body = parse(await exchange(gw, client_ssl, raw))
    assert status == 400 and json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert script.bodies in ([], [b""]) and all(b"upgrade" not in r.lower() for r in script.requests)


async def test_a_head_of_more_than_128_fields_is_431(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"yes"), ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    fields = [f"X-F{i}: v" for i in range(126)]  # with Host: 127 fields
    status, _, body = parse(await exchange(gw, client_ssl, get("/api/v1/visitors", *fields)))
    assert (status, body[:100]) == (200, b"yes")
    status, _, body = parse(await exchange(gw, client_ssl, get("/api/v1/visitors", *fields, "X-A: 1", "X-B: 2")))
    assert status == 431 and json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert len(script.requests) == 1


async def test_fifty_requests_on_one_connection_share_one_upstream_connection(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(*(ok(b"%d" % i) for i in range(50)))
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await connect(gw, client_ssl)
    try:
        for i in range(50):
            writer.write(get(f"/api/v1/visitors/{i}"))
            assert (await read_response(reader))[2] == b"%d" % i
    finally:
        writer.close()
    assert script.connections == 1 and len(script.requests) == 50

