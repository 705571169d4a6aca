"""The spine end to end: HTTPS in, routed, forwarded and streamed, with contract errors."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.conftest import proxy_url, read_json, upstream_headers


def public_route(upstream: str, **extra: Any) -> dict[str, Any]:
    return {"name": "api", "path": "/api/v1/visitors", "upstream": upstream, "auth": [], **extra}


async def test_https_request_reaches_upstream(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    async with https.get(proxy_url(gw, "/api/v1/visitors/42?x=1")) as resp:
        assert resp.status == 200
        seen = await read_json(resp)
        assert resp.headers["X-Upstream"] == "yes"
    assert seen["path"] == "/api/v1/visitors/42"
    assert seen["query"] == "x=1"
    assert state.hits == 1


async def test_unknown_route_is_404_envelope_with_request_id(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    async with https.get(proxy_url(gw, "/nowhere")) as resp:
        assert resp.status == 404
        body = await read_json(resp)
        assert body == {"error": {"code": "ROUTE_NOT_FOUND", "message": body["error"]["message"], "details": []}}
        assert resp.headers["Content-Type"].startswith("application/json")
        assert len(resp.headers["X-Request-Id"]) >= 8
    assert state.hits == 0


async def test_method_not_allowed_lists_allow(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, methods=["GET", "POST"])])
    async with https.delete(proxy_url(gw, "/api/v1/visitors/1")) as resp:
        assert resp.status == 405
        assert (await read_json(resp))["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert resp.headers["Allow"] == "GET, POST"
    assert state.hits == 0


@pytest.mark.parametrize(
    "raw",
    [
        "/api/v1/visitors/../../admin",
        "/api/v1/visitors/%2e%2e/%2E%2E/admin",
        "/api/v1/visitors/.%2e/.%2E/admin",
        "/api/v1/visitors/..//..//admin",
    ],
)
async def test_traversal_cannot_escape_the_route(start_gateway, upstream, https, raw) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    async with https.get(URL(proxy_url(gw, raw), encoded=True)) as resp:
        assert resp.status == 404
        assert (await read_json(resp))["error"]["code"] == "ROUTE_NOT_FOUND"
    assert state.hits == 0


async def test_normalised_path_is_what_is_forwarded(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    async with https.get(URL(proxy_url(gw, "/api/v1/visitors/a/../%62//c/./d%2Fe"), encoded=True)) as resp:
        assert resp.status == 200
        seen = await read_json(resp)
    assert seen["path"] == "/api/v1/visitors/b/c/d%2Fe"


async def test_strip_prefix_and_upstream_base_path(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url + "/base", strip_prefix=True)])
    async with https.get(URL(proxy_url(gw, "/api/v1/visitors/7?q=%20"), encoded=True)) as resp:
        seen = await read_json(resp)
    assert seen["path"] == "/base/7"
    assert seen["query"] == "q=%20"


async def test_body_and_query_forwarded_byte_exact(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    body = bytes(range(256)) * 40 + b"\r\n\x00end"
    query = "a=1&b=%2F%3F&c&d=%E2%82%AC&a=2"
    async with https.post(
        URL(proxy_url(gw, f"/api/v1/visitors?{query}"), encoded=True),
        data=body,
        headers={"Content-Type": "application/octet-stream"},
    ) as resp:
        assert resp.status == 200
        seen = await read_json(resp)
    assert seen["query"] == query
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
    headers = upstream_headers(seen)
    assert headers["content-length"] == str(len(body))
    assert headers["content-type"] == "application/octet-stream"


async def test_large_response_streams_intact(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/stream", name="stream")])
    size = 5 * 1024 * 1024
    digest = hashlib.sha256()
    received = 0
    async with https.get(proxy_url(gw, f"/stream?size={size}")) as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_chunked(65536):
            digest.update(chunk)
            received += len(chunk)
    block = bytes(range(256)) * 256
    expected = hashlib.sha256((block * (size // len(block) + 1))[:size]).hexdigest()
    assert received == size
    assert digest.hexdigest() == expected


@pytest.mark.parametrize("chunked", [False, True])
async def test_large_upload_streams_intact(start_gateway, upstream, https, chunked) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/upload", name="upload")])
    payload = os.urandom(1024 * 1024)

    async def pieces():
        for i in range(0, len(payload), 100_000):
            yield payload[i : i + 100_000]

    data: Any = pieces() if chunked else payload
    async with https.post(proxy_url(gw, "/upload"), data=data) as resp:
        assert resp.status == 200
        result = await read_json(resp)
    assert result == {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}


async def test_header_hygiene_towards_upstream(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    sent = {
        "Authorization": "Bearer secret-value",
        "X-API-Key": "gw_live_secret",
        "X-Gateway-Tenant": "spoofed",
        "x-gateway-key-id": "spoofed",
        "X_Gateway_Tenant": "spoofed",
        "X-Gateway_User": "spoofed",
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "TE": "trailers",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "http",
        "X_Forwarded_For": "6.6.6.6",  # CGI/WSGI servers fold `_` into `-`: the same header to them
        "X_Forwarded_Host": "evil.example",
        "X_Request_Id": "attacker-chosen-id",
        "X_Api_Key": "gw_live_secret",
        "X-HTTP-Method-Override": "DELETE",  # the method routed and authorised on is the request's own
        "X-HTTP-Method": "DELETE",
        "X_Method_Override": "DELETE",
        "X-Custom": "kept",
        "X_Custom_Underscored": "kept",
    }
    async with https.get(proxy_url(gw, "/api/v1/visitors"), headers=sent) as resp:
        seen = upstream_headers(await read_json(resp))
    for name in (
        "authorization",
        "x-api-key",
        "x-drop-me",
        "proxy-authorization",
        "te",
        "connection",
        "x_gateway_tenant",
        "x-gateway_user",
        "x-gateway-key-id",
        "x_forwarded_for",
        "x_forwarded_host",
        "x_request_id",
        "x_api_key",
        "x-http-method-override",
        "x-http-method",
        "x_method_override",
    ):
        assert name not in seen, name
    assert seen["x_custom_underscored"] == "kept"
    assert "x-gateway-tenant" not in seen
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{gw.proxy_port}"
    assert seen["host"] == url.removeprefix("http://")


async def test_hop_by_hop_response_headers_dropped(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/hop", name="hop")])
    async with https.get(proxy_url(gw, "/hop")) as resp:
        assert resp.status == 200
        assert await resp.text() == "ok"
        assert "X-Secret-Hop" not in resp.headers
        assert "Keep-Alive" not in resp.headers


async def test_request_id_kept_when_sane_else_generated(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url)])
    async with https.get(proxy_url(gw, "/api/v1/visitors"), headers={"X-Request-Id": "req-12345678"}) as resp:
        assert resp.headers["X-Request-Id"] == "req-12345678"
        assert upstream_headers(await read_json(resp))["x-request-id"] == "req-12345678"
    async with https.get(proxy_url(gw, "/api/v1/visitors"), headers={"X-Request-Id": "bad id\twith junk"}) as resp:
        generated = resp.headers["X-Request-Id"]
        assert generated != "bad id\twith junk" and len(generated) == 32
        assert upstream_headers(await read_json(resp))["x-request-id"] == generated


async def test_body_over_limit_is_413(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(
        routes=[public_route(url, path="/upload", name="upload")], server={"max_body_bytes": 1000}
    )
    async with https.post(proxy_url(gw, "/upload"), data=b"x" * 1001) as resp:
        assert resp.status == 413
        assert (await read_json(resp))["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # refused on its Content-Length before any upstream contact: no upstream time is recorded
    upstream_times = gw.registry.get_sample_value("gateway_upstream_duration_seconds_count", {"route": "upload"})
    assert not upstream_times and state.hits == 0

    async def pieces():
        for _ in range(10):
            yield b"y" * 500

    async with https.post(proxy_url(gw, "/upload"), data=pieces()) as resp:
        assert resp.status == 413
        assert (await read_json(resp))["error"]["code"] == "PAYLOAD_TOO_LARGE"
    async with https.post(proxy_url(gw, "/upload"), data=b"x" * 1000) as resp:
        assert resp.status == 200


async def test_slow_upstream_is_504_within_timeout(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/slow", name="slow", timeout=0.5)])
    started = time.monotonic()
    async with https.get(proxy_url(gw, "/slow")) as resp:
        assert resp.status == 504
        assert (await read_json(resp))["error"]["code"] == "UPSTREAM_TIMEOUT"
    assert time.monotonic() - started < 0.5 + 5  # at the route's timeout, not when /slow answers (30 s)


async def test_closed_port_is_502(start_gateway, https, unused_tcp_port_factory) -> None:
    port = unused_tcp_port_factory()
    gw = await start_gateway(routes=[public_route(f"http://127.0.0.1:{port}")])
    async with https.get(proxy_url(gw, "/api/v1/visitors")) as resp:
        assert resp.status == 502
        assert (await read_json(resp))["error"]["code"] == "UPSTREAM_UNAVAILABLE"


@pytest.mark.parametrize("reply", [b"", b"garbage that is not http\r\n\r\n"])
async def test_resetting_or_garbage_upstream_is_502(start_gateway, https, reply) -> None:
    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.transport.abort()

    server = await asyncio.start_server(misbehave, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gw = await start_gateway(routes=[public_route(f"http://127.0.0.1:{port}")])
        async with https.get(proxy_url(gw, "/api/v1/visitors")) as resp:
            assert resp.status == 502
            assert (await read_json(resp))["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    finally:
        server.close()


async def test_client_disconnect_cancels_upstream_request(start_gateway, upstream, client_ssl) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/slow", name="slow")])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.proxy_port, ssl=client_ssl, server_hostname="127.0.0.1"
    )
    writer.write(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(state.entered.wait(), 5)
    writer.transport.abort()
    await asyncio.wait_for(state.cancelled.wait(), 5)


async def test_graceful_stop_lets_in_flight_request_finish(start_gateway, upstream, https) -> None:
    url, state = upstream
    # a grace period no loaded machine's pause reaches: the request finishes, it is not cut
    gw = await start_gateway(routes=[public_route(url, path="/slow", name="slow")], server={"grace_period": 60})
    request = asyncio.ensure_future(https.get(proxy_url(gw, "/slow")))
    await asyncio.wait_for(state.entered.wait(), 5)
    stopping = asyncio.ensure_future(gw.stop())
    await asyncio.wait_for(gw.draining.wait(), 5)
    with pytest.raises(aiohttp.ClientConnectorError):
        fresh = aiohttp.TCPConnector(ssl=ssl.create_default_context())
        async with aiohttp.ClientSession(connector=fresh) as other:
            await other.get(proxy_url(gw, "/slow"))
    assert not stopping.done()
    state.release.set()
    resp = await asyncio.wait_for(request, 5)
    assert resp.status == 200
    assert await resp.json() == {"slow": "done"}
    await asyncio.wait_for(stopping, 5)


async def test_a_request_outliving_the_grace_period_is_cut_and_counted(start_gateway, upstream, client_ssl) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[public_route(url, path="/slow", name="slow")], server={"grace_period": 0.3})
    idle_reader, idle_writer = await asyncio.open_connection(
        "127.0.0.1", gw.proxy_port, ssl=client_ssl, server_hostname="127.0.0.1"
    )
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.proxy_port, ssl=client_ssl, server_hostname="127.0.0.1"
    )
    writer.write(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(state.entered.wait(), 5)
    await asyncio.wait_for(gw.stop(), 5)
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""   # an idle connection just closes
    assert await asyncio.wait_for(reader.read(), 5) == b""        # no answer, not a made-up one
    await asyncio.wait_for(state.cancelled.wait(), 5)             # the upstream request is cut too
    assert gw.registry.get_sample_value("gateway_requests_total", {"route": "slow", "method": "GET", "status_class": "4xx",
                                                                      "code": "499"}) == 1
    idle_writer.close()
    writer.close()


async def test_the_gateways_limit_headers_replace_the_upstreams_own(start_gateway, scripted, https) -> None:
    from tests.access.test_keys_e2e import tenant_and_key
    from tests.proxy.scripted import ok

    extra = ("X-RateLimit-Limit: 999", "x-ratelimit-remaining: 998", "X-Request-Id: upstream-id", "X-Upstream: kept")
    script = await scripted(ok(b"{}", *extra), ok(b"{}", *extra))
    gw = await start_gateway(routes=[{"name": "visitors", "path": "/api/v1/visitors", "upstream": script.url}])
    _, secret = await tenant_and_key(gw)
    async with https.get(proxy_url(gw, "/api/v1/visitors"), headers={"X-API-Key": secret}) as resp:
        assert resp.status == 200
        assert resp.headers.getall("X-RateLimit-Limit") == ["100"]  # the starter plan, once
        assert resp.headers.getall("X-RateLimit-Remaining") == ["99"]
        assert len(resp.headers.getall("X-Request-Id")) == 1 and resp.headers["X-Upstream"] == "kept"
    gw2 = await start_gateway(routes=[public_route(script.url)])
    async with https.get(proxy_url(gw2, "/api/v1/visitors")) as resp:  # no key, no limit of ours: theirs stays
        assert resp.headers.getall("X-RateLimit-Limit") == ["999"]
