"""Plain HTTP is refused unless a trusted TLS-terminating proxy vouches for it."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import read_json, upstream_headers


def plain_url(gw: Any, path: str) -> str:
    return f"http://127.0.0.1:{gw.plain_port}{path}"


def route(upstream: str) -> dict[str, Any]:
    return {"name": "api", "path": "/api", "upstream": upstream, "auth": []}


async def test_plain_http_is_refused_with_envelope(start_gateway, upstream) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[route(url)], server={"plain_http_port": 0})
    async with (aiohttp.ClientSession() as plain,
                plain.get(plain_url(gw, "/api"), headers={"X-Forwarded-Proto": "https"}) as resp):
        assert resp.status == 403
        body = await read_json(resp)
        assert body["error"]["code"] == "HTTPS_REQUIRED"
        assert resp.headers["X-Request-Id"]
    assert state.hits == 0


async def test_trusted_proxy_with_forwarded_proto_https_passes(start_gateway, upstream) -> None:
    url, state = upstream
    gw = await start_gateway(
        routes=[route(url)],
        server={"plain_http_port": 0, "trusted_proxies": ["127.0.0.0/8"]},
    )
    async with aiohttp.ClientSession() as plain:
        async with plain.get(
            plain_url(gw, "/api"),
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "api.example.com"},
        ) as resp:
            assert resp.status == 200
            seen = upstream_headers(await read_json(resp))
        assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
        assert seen["x-forwarded-host"] == "api.example.com"
        assert seen["x-forwarded-proto"] == "https"
        async with plain.get(plain_url(gw, "/api"), headers={"X-Forwarded-Proto": "http"}) as resp:
            assert resp.status == 403
            assert (await read_json(resp))["error"]["code"] == "HTTPS_REQUIRED"
        async with plain.get(plain_url(gw, "/api")) as resp:
            assert resp.status == 403
    assert state.hits == 1


async def test_untrusted_peer_cannot_spoof_forwarded_for_over_tls(start_gateway, upstream, https) -> None:
    url, state = upstream
    gw = await start_gateway(routes=[route(url)], server={"trusted_proxies": ["10.0.0.0/8"]})
    async with https.get(
        f"https://127.0.0.1:{gw.proxy_port}/api", headers={"X-Forwarded-For": "1.2.3.4"}
    ) as resp:
        seen = upstream_headers(await read_json(resp))
    assert seen["x-forwarded-for"] == "127.0.0.1"


async def test_admin_listener_health_and_json_errors(start_gateway) -> None:
    gw = await start_gateway()
    base = f"http://127.0.0.1:{gw.admin_port}"
    async with aiohttp.ClientSession() as client:
        async with client.get(base + "/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}
        async with client.get(base + "/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ready"
        async with client.get(base + "/no/such/thing") as resp:
            assert resp.status == 404
            assert (await read_json(resp))["error"]["code"] == "NOT_FOUND"
            assert resp.headers["X-Request-Id"]


CLIENT_ADDRESS_HEADERS = ["X-Real-IP", "True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "X-Cluster-Client-IP",
                          "Fastly-Client-IP", "X-Original-Forwarded-For", "Client-IP", "X-Forwarded", "Forwarded-For",
                          "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr", "X-ProxyUser-Ip",
                          "X-Original-URL", "X-Rewrite-URL"]


def spoofed() -> list[tuple[str, str]]:
    """Every client-address (and path-override) header, in both spellings CGI and WSGI fold together."""
    return [(n, "6.6.6.6") for n in CLIENT_ADDRESS_HEADERS] + [(n.replace("-", "_"), "6.6.6.6") for n in CLIENT_ADDRESS_HEADERS]


def real_ips(seen: dict[str, Any]) -> list[str]:
    return [v for k, v in seen["headers"] if k.lower().replace("_", "-") == "x-real-ip"]


async def test_client_address_headers_from_the_client_never_reach_the_upstream(start_gateway, upstream, https) -> None:
    url, _ = upstream
    gw = await start_gateway(routes=[route(url)], server={"trusted_proxies": ["10.0.0.0/8"]})
    async with https.get(f"https://127.0.0.1:{gw.proxy_port}/api", headers=spoofed()) as resp:
        body = await read_json(resp)
    seen = upstream_headers(body)
    for name in CLIENT_ADDRESS_HEADERS:
        lname = name.lower()
        assert lname.replace("_", "-") == "x-real-ip" or lname not in seen, name
        assert lname.replace("-", "_") not in seen, name
    assert real_ips(body) == ["127.0.0.1"]  # the gateway's own, once
    assert seen["x-forwarded-for"] == "127.0.0.1"


async def test_x_real_ip_is_the_client_a_trusted_proxy_names(start_gateway, upstream) -> None:
    url, _ = upstream
    gw = await start_gateway(routes=[route(url)], server={"plain_http_port": 0, "trusted_proxies": ["127.0.0.0/8"]})
    headers = [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "198.51.100.7, 203.0.113.9"), *spoofed()]
    async with aiohttp.ClientSession() as plain, plain.get(plain_url(gw, "/api"), headers=headers) as resp:
        assert resp.status == 200
        body = await read_json(resp)
    assert real_ips(body) == ["203.0.113.9"]  # the address the trusted proxy saw, as in X-Forwarded-For
    seen = upstream_headers(body)
    assert seen["x-forwarded-for"] == "198.51.100.7, 203.0.113.9, 127.0.0.1"
    assert "true-client-ip" not in seen and "cf-connecting-ip" not in seen and "x-original-url" not in seen
