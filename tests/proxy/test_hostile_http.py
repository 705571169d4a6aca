"""Requests aiohttp's parser refuses, and smuggling attempts: JSON errors, and never an
ambiguous request reaching the upstream (raw sockets on both sides)."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import pytest

from tests.conftest import admin_url, proxy_url
from tests.proxy.scripted import ok
from tests.proxy.test_forwarding import public_route


async def exchange(gw: Any, client_ssl: ssl.SSLContext, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.proxy_port, ssl=client_ssl,
                                                   server_hostname="127.0.0.1")
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


HOSTILE = {
    "content-length and chunked": b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
    "chunked, identity": b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "chunk size overflow": b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"ffffffffffffffffffff1\r\nx\r\n0\r\n\r\n",
    "obs-fold": b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    "NUL in header": b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare LF injection": b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\n\r\n",
    "oversized header line": b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
    "garbage request line": b"\x16\x03\x01 not http at all\r\n\r\n",
    "thousands of headers": b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\n"
                            + b"".join(b"X-H%d: a\r\n" % i for i in range(3000)) + b"\r\n",
    # RFC 9112 3.2: the gateway and a server behind it could each pick another of two hosts
    "two Host headers": b"GET /api/v1/visitors HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n\r\n",
    "two Host headers, other case": b"GET /api/v1/visitors HTTP/1.1\r\nHost: good.example\r\nhost: evil.example\r\n\r\n",
    "two Host headers on HTTP/1.0": b"GET /api/v1/visitors HTTP/1.0\r\nHost: good.example\r\nHost: evil.example\r\n\r\n",
    "no Host on HTTP/1.1": b"GET /api/v1/visitors HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "a Host that is two hosts": b"GET /api/v1/visitors HTTP/1.1\r\nHost: good.example, evil.example\r\n\r\n",
    "a Host with a path": b"GET /api/v1/visitors HTTP/1.1\r\nHost: good.example/evil\r\n\r\n",
    "a Host with userinfo": b"GET /api/v1/visitors HTTP/1.1\r\nHost: evil.example@good.example\r\n\r\n",
    "oversized header total": b"GET /api/v1/visitors HTTP/1.1\r\nHost: x\r\n"
                              + b"".join(b"X-H%d: %b\r\n" % (i, b"a" * 8000) for i in range(100)) + b"\r\n",
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_refused_requests_get_a_json_error_and_never_reach_the_upstream(
    start_gateway, scripted, client_ssl, name
) -> None:
    script = await scripted(ok(b"never"), ok(b"never"))
    gw = await start_gateway(routes=[public_route(script.url)])
    status, headers, body = parse(await exchange(gw, client_ssl, HOSTILE[name]))
    assert 400 <= status < 500, (status, body)
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body[: int(headers["content-length"])])["error"]
    assert error["code"] in ("BAD_REQUEST", "PAYLOAD_TOO_LARGE") and error["message"]
    assert "x-request-id" in headers
    assert script.requests == []  # nothing ambiguous went on


async def test_a_chunked_upload_reaches_the_upstream_as_one_unambiguous_request(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"done"))
    gw = await start_gateway(routes=[public_route(script.url)])
    raw = (b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    status, _, _ = parse(await exchange(gw, client_ssl, raw))
    assert status == 200
    [request] = script.requests
    head = request.decode("latin-1").lower()
    assert head.count("transfer-encoding: chunked") == 1 and "content-length:" not in head
    assert dechunk(script.bodies[0]) == b"abcde"


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2 :]


async def test_absolute_form_target_and_foreign_host_stay_on_the_matched_route(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"a"), ok(b"b"))
    gw = await start_gateway(routes=[public_route(script.url)])
    raw = b"GET /api/v1/visitors HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    status, _, _ = parse(await exchange(gw, client_ssl, raw))
    assert status == 200
    upstream_host = [line for line in script.requests[0].decode().split("\r\n") if line.lower().startswith("host:")]
    assert upstream_host == [f"Host: {script.url.removeprefix('http://')}"]
    forwarded = [line for line in script.requests[0].decode().split("\r\n") if line.lower().startswith("x-forwarded-host:")]
    assert forwarded == ["X-Forwarded-Host: evil.example"] or forwarded == []


@pytest.mark.parametrize("host", [b"Host: good.example:8443\r\n", b"Host: [::1]\r\n", b"Host: \r\n", b""])
async def test_one_host_or_none_on_http_1_0_is_served(start_gateway, scripted, client_ssl, host) -> None:
    script = await scripted(ok(b"a"))
    gw = await start_gateway(routes=[public_route(script.url)])
    version = b"1.0" if not host else b"1.1"
    status, _, body = parse(await exchange(gw, client_ssl, b"GET /api/v1/visitors HTTP/%b\r\n%b\r\n" % (version, host)))
    assert (status, body) == (200, b"a")
    forwarded = [line for line in script.requests[0].decode().split("\r\n") if line.lower().startswith("x-forwarded-host:")]
    assert forwarded == ([f"X-Forwarded-Host: {host.decode()[6:].strip()}"] if host.strip() != b"Host:" and host else [])


async def test_expect_100_continue_is_answered_after_the_checks(start_gateway, scripted, client_ssl) -> None:
    script = await scripted(ok(b"stored"))
    gw = await start_gateway(routes=[public_route(script.url)])
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.proxy_port, ssl=client_ssl,
                                                   server_hostname="127.0.0.1")
    try:
        writer.write(b"PUT /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        await writer.drain()
        status, _, _ = parse(await asyncio.wait_for(reader.read(65536), 5))
        assert status == 200
    finally:
        writer.close()
    assert script.bodies == [b"hello"]
    assert b"expect:" not in script.requests[0].lower()  # hop-level: not passed on


# Every spelling of "go up and elsewhere": each is refused, or reaches the visitors upstream with a
# path that stays below /api/v1/visitors; the internal route's upstream never sees any of them.
ESCAPES = [
    "/api/v1/visitors/../../internal/x",
    "/api/v1/visitors/%2e%2e/%2e%2e/internal/x",
    "/api/v1/visitors/%2E%2E/%2E%2E/internal/x",
    "/api/v1/visitors/.%2e/%2e./internal/x",
    "/api/v1/visitors/%252e%252e/%252e%252e/internal/x",   # double-encoded: decoded once only
    "/api/v1/visitors/..%2f..%2finternal/x",                # encoded slash stays encoded
    "/api/v1/visitors/..%2F..%2Finternal/x",
    "/api/v1/visitors/..\\..\\internal/x",
    "/api/v1/visitors/%5c..%5c..%5cinternal/x",
    "/api/v1/visitors/%c0%ae%c0%ae/%c0%ae%c0%ae/internal/x",  # overlong UTF-8 dots
    "/api/v1/visitors/%e0%80%ae%e0%80%ae/%e0%80%ae%e0%80%ae/internal/x",
    "/api/v1/visitors/%c0%af..%c0%af..%c0%afinternal/x",      # overlong UTF-8 slash
    "/api/v1/visitors/..;/..;/internal/x",                     # path parameters (Tomcat's reading)
    "/api/v1/visitors/;/../../internal/x",
    "/api/v1/visitors/%00/../../internal/x",
    "/api/v1/visitors/./.././../internal/x",
    "//api/v1/visitors/../../internal/x",
    "/api/v1/visitors/....//....//internal/x",
    "/api/v1/visitors/%2e%2e%2f%2e%2e%2finternal/x",
    "/api/v1/visitors/\u00e9/../../internal/x".encode("utf-8").decode("latin-1"),  # raw non-ASCII bytes
    "https://evil.example/internal/x",                          # absolute-form naming another site
    "http://127.0.0.1/internal/x",
    "https://evil.example/api/v1/visitors/../../internal/x",
    "evil.example:443",                                         # authority-form outside CONNECT
    "*",                                                        # asterisk-form
]


# refused outright: what some upstream would read as a step up, or cannot read unambiguously
REFUSED = {t for t in ESCAPES if any(m in t.lower() for m in ("%2f", "\\", "%5c", "%c0", "%e0", ";/", "%00", "://"))
           or not t.startswith("/") or not t.isascii()} - {"/api/v1/visitors/;/../../internal/x"}


@pytest.mark.parametrize("target", ESCAPES)
async def test_no_spelling_of_a_path_escapes_its_route(start_gateway, scripted, client_ssl, target) -> None:
    visitors = await scripted(ok(b'{"route":"visitors"}'))
    internal = await scripted(ok(b'{"route":"internal"}'))
    gw = await start_gateway(routes=[public_route(visitors.url),
                                     {"name": "internal", "path": "/internal", "upstream": internal.url, "auth": []}])
    raw = f"GET {target} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode("latin-1")
    status, headers, body = parse(await exchange(gw, client_ssl, raw))
    assert internal.requests == []
    assert status < 500, (status, body)
    if target in REFUSED:
        assert status == 400, (status, body)
    if status == 200:
        [request] = visitors.requests
        path = request.split(b" ")[1].decode("latin-1")
        assert path.startswith("/api/v1/visitors/") or path == "/api/v1/visitors"
        segments = path.split("?")[0].split("/")
        assert ".." not in segments and "." not in segments and "\\" not in path
        assert "%2e" not in path.lower() and "%2f" not in path.lower()  # nothing an upstream could decode into a climb
    else:
        assert 400 <= status < 500 and headers["content-type"].startswith("application/json")
        assert visitors.requests == []


# Targets a public parent route would take while some upstream reads them as the protected route:
# a fragment it cuts off, an encoded slash it decodes (WSGI), a path parameter it drops (Tomcat).
AMBIGUOUS = ["/api/v1/visitors#x", "/api/v1/visitors?a=1#x", "/api/v1%2Fvisitors", "/api%2fv1%2fvisitors",
             "/api/v1/visitors;x", "/api/v1;x/visitors/1",
             # the empty segments those leave, which upstreams (and nginx) merge
             "/api/v1/;x/visitors", "/api/;/v1/visitors", "/api/v1/%2Fvisitors", "/api/v1/%2F;x/visitors",
             # an encoded `;` or `%` that a proxy in between decodes; letter case (Express, IIS ignore it)
             "/api/v1/visitors%3Bx", "/api/v1%3Bjsessionid=1/visitors", "/api/v1%252Fvisitors",
             "/API/v1/visitors", "/api/v1/VISITORS", "/Api/V1;x/visitors",
             # dot segments behind an escape a proxy decodes; a format suffix (Rails, older Spring)
             "/public/..%3Bx/api/v1/visitors", "/x/%252E%252E/api/v1/visitors", "/api/v1/visitors.json"]


@pytest.mark.parametrize("target", AMBIGUOUS)
async def test_a_target_upstreams_may_read_as_another_route_is_refused(start_gateway, scripted, client_ssl,
                                                                        target) -> None:
    site = await scripted(ok(b'{"route":"site"}'))
    gw = await start_gateway(routes=[{"name": "site", "path": "/", "upstream": site.url, "auth": []},
                                     {"name": "visitors", "path": "/api/v1/visitors", "upstream": site.url}])
    raw = f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    status, headers, body = parse(await exchange(gw, client_ssl, raw))
    assert (status, json.loads(body)["error"]["code"]) == (400, "BAD_REQUEST")
    assert site.requests == []
    # where every reading names the same route, the path goes through untouched
    raw = b"GET /Files/a%2Fb;v=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _, _ = parse(await exchange(gw, client_ssl, raw))
    assert status == 200 and site.requests[0].startswith(b"GET /Files/a%2Fb;v=1 HTTP/1.1")


@pytest.mark.parametrize("method", ["CONNECT", "TRACE"])
async def test_connect_and_trace_never_reach_an_upstream(start_gateway, scripted, client_ssl, method) -> None:
    visitors = await scripted(ok(b"never"))
    gw = await start_gateway(routes=[public_route(visitors.url)])
    target = "evil.example:443" if method == "CONNECT" else "/api/v1/visitors"
    status, _, _ = parse(await exchange(gw, client_ssl, f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))
    assert 400 <= status < 500
    assert visitors.requests == []


async def test_no_answer_names_the_library_or_its_version(start_gateway, scripted, https) -> None:
    script = await scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # an upstream without Server
    gw = await start_gateway(routes=[public_route(script.url)])
    urls = [proxy_url(gw, "/api/v1/visitors"), proxy_url(gw, "/nowhere"), proxy_url(gw, "/.well-known/jwks.json"),
            admin_url(gw, "/healthz"), admin_url(gw, "/admin/tenants")]
    for url in urls:
        async with https.get(url) as resp:
            await resp.read()
            assert resp.headers.get("Server") == "gateway", (url, resp.headers.get("Server"))
