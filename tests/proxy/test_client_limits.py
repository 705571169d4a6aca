"""What one client connection can make the gateway hold or wait for: trailers that never end,
pipelines that outrun their answers, answers the client does not read, half-closed clients."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.proxy.scripted import ok
from tests.proxy.test_client_http import get, read_response
from tests.proxy.test_forwarding import public_route
from tests.proxy.test_hostile_http import parse
from tests.proxy.test_slow_clients import answer_until_closed, connect

HTTPS_HOP = "X-Forwarded-Proto: https"  # what a trusted TLS-terminating proxy adds


async def plain(gw: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gw.plain_port)


def behind_proxy(**server: Any) -> dict[str, Any]:
    return {"plain_http_port": 0, "trusted_proxies": ["127.0.0.1/32"], **server}


async def test_a_trailer_that_never_ends_is_refused_without_being_buffered(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await connect(gw, client_ssl)
    writer.write(b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n0\r\nX-Trailer: ")
    sent = 0
    try:
        while not reader.at_eof() and sent < 64 << 20:
            writer.write(b"a" * 65536)
            await asyncio.wait_for(writer.drain(), 10)
            sent += 65536
    except ConnectionError:
        pass
    answer = await answer_until_closed(reader)
    writer.close()
    status, _, body = parse(answer)
    assert status == 431 and json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert sent < 4 << 20  # refused after about one field's worth, not at the body timeout


async def test_pipelined_requests_split_anywhere_across_reads_are_all_answered(start_gateway, scripted) -> None:
    n = 120
    script = await scripted(*(ok(b"%d" % i) for i in range(n + 1)))
    gw = await start_gateway(routes=[public_route(script.url)], server=behind_proxy())
    reader, writer = await plain(gw)
    first = get("/api/v1/visitors/first", HTTPS_HOP, "X-Pad: " + "p" * 4000)
    writer.write(first[:20])
    await writer.drain()
    await asyncio.sleep(0.1)  # lets the first bytes arrive as a read of their own
    rest = b"".join(get(f"/api/v1/visitors/{i}", HTTPS_HOP, "X-Pad: " + "p" * 1000) for i in range(n))
    writer.write(first[20:] + rest)  # one read spanning 120 heads: none of them is too large
    try:
        answers = [await read_response(reader) for _ in range(n + 1)]
    finally:
        writer.close()
    assert [body for _, _, body in answers] == [b"%d" % i for i in range(n + 1)]


async def test_a_body_behind_a_full_pipeline_is_still_read(start_gateway, upstream, client_ssl) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/slow", name="slow"), public_route(url)],
                             server={"body_timeout": 30})
    reader, writer = await connect(gw, client_ssl)
    try:
        writer.write(get("/slow?max=30") + b"".join(get(f"/api/v1/visitors/{i}") for i in range(20))
                     + b"POST /api/v1/visitors/last HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(state.entered.wait(), 5)
        writer.write(b"hello")  # arrives while reading is paused behind the queue
        await writer.drain()
        state.release.set()
        started = time.monotonic()
        answers = [await read_response(reader) for _ in range(22)]
    finally:
        writer.close()
    assert [status for status, _, _ in answers] == [200] * 22
    assert json.loads(answers[-1][2])["body_len"] == 5
    assert time.monotonic() - started < 15  # not held until the body timeout (30 s)


async def test_a_client_that_reads_no_answers_gets_no_more_forwarded(start_gateway, scripted) -> None:
    answer = b"x" * (128 * 1024)
    n = 300
    script = await scripted(*(ok(answer) for _ in range(n)))
    gw = await start_gateway(routes=[public_route(script.url)], server=behind_proxy())
    reader, writer = await plain(gw)
    writer.transport.pause_reading()
    writer.write(b"".join(get(f"/api/v1/visitors/{i}", HTTPS_HOP) for i in range(n)))
    await writer.drain()
    await asyncio.sleep(1.0)  # an observation window: forwarding should stall, not run ahead
    stalled_at = len(script.requests)
    writer.transport.resume_reading()
    try:
        answers = [await read_response(reader) for _ in range(n)]
    finally:
        writer.close()
    assert stalled_at < n / 2, stalled_at  # answers wait in buffers of bounded size
    assert all(status == 200 and body == answer for status, _, body in answers)


async def test_a_client_that_stops_reading_a_download_is_cut_after_the_send_timeout(
    start_gateway, upstream, client_ssl
) -> None:
    url, _ = upstream
    gw = await start_gateway(routes=[public_route(url, path="/stream", name="stream")],
                             server={"send_timeout": 0.5})
    reader, writer = await connect(gw, client_ssl)
    writer.transport.pause_reading()
    writer.write(get("/stream?size=200000000"))
    await writer.drain()
    await asyncio.sleep(1.5)  # the scenario: a client taking nothing for three send timeouts
    writer.transport.resume_reading()
    received = 0
    try:
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
            received += len(chunk)
    except ConnectionError:
        pass
    writer.close()
    assert 0 < received < (50 << 20)  # what sat in buffers, then the cut; not the 200 MB


async def test_a_half_closed_client_gets_every_pipelined_answer(start_gateway, scripted) -> None:
    script = await scripted(ok(b"one"), ok(b"two"))
    gw = await start_gateway(routes=[public_route(script.url)], server=behind_proxy())
    reader, writer = await plain(gw)
    writer.write(get("/api/v1/visitors/1", HTTPS_HOP) + get("/api/v1/visitors/2", HTTPS_HOP))
    writer.write_eof()
    answers = [await read_response(reader) for _ in range(2)]
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert [body for _, _, body in answers] == [b"one", b"two"]


async def test_a_body_cut_short_by_a_half_close_is_a_400(start_gateway, scripted) -> None:
    script = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)], server=behind_proxy())
    reader, writer = await plain(gw)
    writer.write(b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\n" + HTTPS_HOP.encode()
                 + b"\r\nContent-Length: 10\r\n\r\nabcde")
    await writer.drain()
    writer.write_eof()
    status, _, body = parse(await answer_until_closed(reader))
    writer.close()
    assert status == 400 and json.loads(body)["error"]["code"] == "BAD_REQUEST"
    assert script.bodies == []


async def test_hundreds_of_requests_in_one_read_are_all_answered_in_order(start_gateway, scripted) -> None:
    n = 600
    script = await scripted(*(ok(b"%d" % i) for i in range(n)))
    gw = await start_gateway(routes=[public_route(script.url)], server=behind_proxy())
    reader, writer = await plain(gw)
    writer.write(b"".join(get(f"/api/v1/visitors/{i}", HTTPS_HOP) for i in range(n)))
    try:
        answers = [await read_response(reader) for _ in range(n)]
    finally:
        writer.close()
    assert [body for _, _, body in answers] == [b"%d" % i for i in range(n)]


async def test_a_request_pipelined_behind_a_cut_answer_never_reaches_the_upstream(start_gateway, scripted, client_ssl) -> None:
    cut = (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789", "abort")
    script = await scripted(ok(b"warm"), ok(b"warm"), cut, ok(b"never"), ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    warm = [await connect(gw, client_ssl) for _ in range(2)]
    for _, writer in warm:  # two at once: two upstream connections wait in the pool afterwards
        writer.write(get("/api/v1/visitors/warm"))
    for reader, _ in warm:
        assert (await read_response(reader))[2] == b"warm"
    reader, writer = await connect(gw, client_ssl)
    writer.write(get("/api/v1/visitors/stream")
                 + b"POST /api/v1/visitors/pay HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    try:
        received = await answer_until_closed(reader)
    except ConnectionError:
        received = b""
    await asyncio.sleep(0.3)  # an observation window: a started POST would reach the upstream in it
    for _, other in [*warm, (reader, writer)]:
        other.close()
    assert b"0123456789" in received or received == b""
    assert not any(r.startswith(b"POST") for r in script.requests)


async def test_a_graceful_stop_starts_no_pipelined_request(start_gateway, upstream, client_ssl) -> None:
    url, state = upstream
    # the grace period well above the download's time on a loaded machine (over 5 s seen)
    gw = await start_gateway(routes=[public_route(url, path="/stream", name="stream"), public_route(url)],
                             server={"grace_period": 60})
    reader, writer = await connect(gw, client_ssl)
    writer.write(get("/stream?size=32000000") + get("/api/v1/visitors/after"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()  # sent keep-alive
    writer.transport.pause_reading()  # the download stalls mid-body: buffers fill, the gateway waits
    stopping = asyncio.ensure_future(gw.stop())
    await asyncio.wait_for(gw.draining.wait(), 5)
    writer.transport.resume_reading()
    rest = b""
    while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
        rest += chunk
    await asyncio.wait_for(stopping, 60)
    writer.close()
    assert rest.endswith(b"\r\n0\r\n\r\n") and b"HTTP/1.1 " not in rest  # finished, then closed
    assert state.hits == 1  # the request behind it was never forwarded
