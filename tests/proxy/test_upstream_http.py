"""HTTP/1.1 towards the upstream, against a scripted server that answers with exact bytes.

Keep-alive reuse, bodies delimited by length, chunks or the end of the connection, HEAD, 204 and
304 without a body, 1xx before the real answer, stale keep-alive connections, and failures after
the response has started.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.conftest import proxy_url, read_json
from tests.proxy.scripted import CLOSE, Scripted, ok
from tests.proxy.test_forwarding import public_route


async def gateway_for(start_gateway, script: Scripted) -> Any:
    return await start_gateway(routes=[public_route(script.url)])


async def get(https: aiohttp.ClientSession, gw: Any, method: str = "GET", **kw: Any) -> tuple[int, bytes, Any]:
    async with https.request(method, proxy_url(gw, "/api/v1/visitors"), **kw) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_keep_alive_connection_is_reused(start_gateway, https, scripted) -> None:
    script = await scripted(*[ok(f'{{"n":{i}}}'.encode()) for i in range(5)])
    gw = await gateway_for(start_gateway, script)
    bodies = [(await get(https, gw))[1] for _ in range(5)]
    assert bodies == [f'{{"n":{i}}}'.encode() for i in range(5)]
    assert script.connections == 1


async def test_connection_close_is_honoured(start_gateway, https, scripted) -> None:
    script = await scripted((ok(b"a", "Connection: close"), "close"), ok(b"b"))
    gw = await gateway_for(start_gateway, script)
    assert (await get(https, gw))[1] == b"a"
    assert (await get(https, gw))[1] == b"b"
    assert script.connections == 2


async def test_chunked_response_is_reassembled(start_gateway, https, scripted) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    script = await scripted(chunked, ok(b"next"))
    gw = await gateway_for(start_gateway, script)
    status, body, headers = await get(https, gw)
    assert (status, body) == (200, b"hello world")
    assert (await get(https, gw))[1] == b"next"
    assert script.connections == 1


async def test_body_delimited_by_connection_close(start_gateway, https, scripted) -> None:
    script = await scripted((b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", "close"), ok(b"x"))
    gw = await gateway_for(start_gateway, script)
    assert (await get(https, gw))[:2] == (200, b"until the end")
    assert (await get(https, gw))[1] == b"x"
    assert script.connections == 2


async def test_a_body_whose_coding_is_not_chunked_ends_with_the_connection(start_gateway, https, scripted) -> None:
    # RFC 9112 6.3: a response transfer coding that does not end in chunked: read until the close
    script = await scripted((b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip, to the end",
                             "close"), ok(b"x"))
    gw = await gateway_for(start_gateway, script)
    assert (await get(https, gw))[:2] == (200, b"not really gzip, to the end")
    assert (await get(https, gw))[1] == b"x"


async def test_head_answer_has_no_body_and_the_gateway_does_not_wait_for_one(start_gateway, https, scripted) -> None:
    script = await scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", ok(b"after"))
    gw = await gateway_for(start_gateway, script)
    status, body, headers = await asyncio.wait_for(get(https, gw, "HEAD"), 5)
    assert (status, body, headers["Content-Length"]) == (200, b"", "1234")
    assert (await get(https, gw))[1] == b"after"


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses_keep_the_connection(start_gateway, https, scripted, status) -> None:
    script = await scripted(f"HTTP/1.1 {status} Nothing\r\nETag: \"v1\"\r\n\r\n".encode(), ok(b"after"))
    gw = await gateway_for(start_gateway, script)
    got, body, headers = await asyncio.wait_for(get(https, gw), 5)
    assert (got, body, headers["ETag"]) == (status, b"", '"v1"')
    assert (await get(https, gw))[1] == b"after"
    assert script.connections == 1


async def test_informational_responses_are_skipped(start_gateway, https, scripted) -> None:
    script = await scripted(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + ok(b"real"))
    gw = await gateway_for(start_gateway, script)
    assert (await get(https, gw))[:2] == (200, b"real")


async def test_unasked_protocol_switch_is_502(start_gateway, https, scripted) -> None:
    script = await scripted(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
    gw = await gateway_for(start_gateway, script)
    async with https.get(proxy_url(gw, "/api/v1/visitors")) as resp:
        assert resp.status == 502
        assert (await read_json(resp))["error"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_stale_keep_alive_connection_is_retried_for_idempotent_requests(start_gateway, https, scripted) -> None:
    # the upstream answers once, then drops the kept-alive connection when the next request comes
    script = await scripted(ok(b"first"), CLOSE, ok(b"second"))
    gw = await gateway_for(start_gateway, script)
    assert (await get(https, gw))[1] == b"first"
    assert (await get(https, gw))[:2] == (200, b"second")
    assert script.connections == 2 and len(script.requests) == 3


async def test_stale_connection_is_not_retried_for_a_post(start_gateway, https, scripted) -> None:
    script = await scripted(ok(b"first"), CLOSE, ok(b"never"))
    gw = await gateway_for(start_gateway, script)
    assert (await get(https, gw))[1] == b"first"
    status, body, _ = await get(https, gw, "POST", data=b"charge the card")
    assert status == 502
    assert len(script.requests) == 2  # sent once: the upstream may have acted on it


async def test_upstream_dying_mid_body_cuts_the_client_connection(start_gateway, https, scripted) -> None:
    script = await scripted((b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", "abort"), ok(b"later"))
    gw = await gateway_for(start_gateway, script)
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(https, gw)
    assert (await get(https, gw))[1] == b"later"  # the broken connection was not pooled


async def test_idle_upstream_connections_are_closed_after_keepalive(start_gateway, https, scripted) -> None:
    script = await scripted(ok(b"a"))
    gw = await start_gateway(routes=[public_route(script.url)], server={"upstream_keepalive": 0.2})
    assert (await get(https, gw))[1] == b"a"
    assert gw.upstream_pool.idle_count() == 1
    await asyncio.wait_for(script.disconnected.wait(), 5)  # the gateway closed its idle connection
    assert gw.upstream_pool.idle_count() == 0
