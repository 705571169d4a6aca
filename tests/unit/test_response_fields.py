"""Header hygiene both ways (`proxy/headers.py`): what of an upstream's response head reaches the
client, and what of a client's request headers reaches the upstream."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.proxy import headers
from gateway.proxy.headers import is_gateway_header, response_fields, sane_request_id, upstream_request_headers


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    """The drop sets are remembered per combination: each test builds its own."""
    headers._dropped.clear()
    headers._named.clear()


def lines(block: bytes) -> list[bytes]:
    assert block.endswith(b"\r\n")
    return block[:-2].split(b"\r\n")


def test_hop_by_hop_named_and_gateway_set_headers_are_replaced() -> None:
    raw = [
        (b"Content-Type", b"application/json"),
        (b"Connection", b"keep-alive, X-Secret-Hop"),
        (b"X-Secret-Hop", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"x-ratelimit-remaining", b"999"),
        (b"X-Request-Id", b"upstream-id"),
        (b"Content-Length", b"12"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=\xe9"),
    ]
    own = [("X-RateLimit-Remaining", "4"), ("X-Request-Id", "gw-id")]
    for _ in range(2):  # the second time from the caches
        block = response_fields(raw, own)
        assert lines(block.lines) == [
            b"Content-Type: application/json",
            b"Content-Length: 12",
            b"Set-Cookie: a=1",
            b"Set-Cookie: b=\xe9",
            b"Server: gateway",
            b"X-RateLimit-Remaining: 4",
            b"X-Request-Id: gw-id",
        ]
        assert block.has_length and not block.has_date


def test_upstream_server_and_date_are_kept_and_nothing_own_is_added() -> None:
    block = response_fields([(b"Server", b"nginx"), (b"Date", b"Sun, 29 Nov 2026 08:00:00 GMT")], [])
    assert lines(block.lines) == [b"Server: nginx", b"Date: Sun, 29 Nov 2026 08:00:00 GMT"]
    assert block.has_date and not block.has_length
    assert not response_fields([(b"X-A", b"1")], []).has_length
    assert lines(response_fields([], []).lines) == [b"Server: gateway"]


def test_an_upstream_reason_phrase_is_remembered_only_when_short() -> None:
    from gateway.http import messages

    long_reason = "x" * 100_000
    head = messages.response_head(200, long_reason, {"Content-Type": "text/plain"}, b"")
    assert head.startswith(b"HTTP/1.1 200 " + long_reason.encode() + b"\r\n")
    assert (200, long_reason) not in messages._status_lines
    assert messages.response_head(200, "Fine", {}, b"").startswith(b"HTTP/1.1 200 Fine\r\n")
    assert (200, "Fine") in messages._status_lines


def test_connection_tokens_without_spaces_are_each_dropped() -> None:
    raw = [(b"Connection", b"close,X-A,x-b"), (b"X-A", b"1"), (b"X-B", b"2"), (b"X-C", b"3")]
    for _ in range(2):  # the second time from the cache
        assert lines(response_fields(raw, []).lines) == [b"X-C: 3", b"Server: gateway"]
    raw = [(b"Connection", b"X-A"), (b"Connection", b" , X-B ,"), (b"X-A", b"1"), (b"X-B", b"2"), (b"X-C", b"3")]
    assert lines(response_fields(raw, []).lines) == [b"X-C: 3", b"Server: gateway"]


def test_request_connection_tokens_without_spaces_are_each_dropped() -> None:
    incoming = CIMultiDictProxy(CIMultiDict([
        ("Connection", "keep-alive,X-A,x-b"), ("Connection", " ,X-D "), ("X-A", "1"), ("X-B", "2"), ("X-C", "3"),
        ("X-D", "4"), ("X-Real-IP", "6.6.6.6"), ("True_Client_IP", "6.6.6.6"), ("Cf-Connecting-Ip", "6.6.6.6"),
    ]))
    assert upstream_request_headers(incoming, [("X-Own", "y")]) == [("X-C", "3"), ("X-Own", "y")]


def test_without_connection_or_own_headers_only_hop_by_hop_ones_go() -> None:
    raw = [(b"Keep-Alive", b"timeout=5"), (b"X-A", b"1"), (b"Content-Length", b"0")]
    block = response_fields(raw, [])
    assert lines(block.lines) == [b"X-A: 1", b"Content-Length: 0", b"Server: gateway"]
    assert block.has_length and not block.has_date
    block = response_fields([(b"Date", b"Tue"), (b"Server", b"up")], [("X-Own", "\u00e9")])
    assert lines(block.lines) == [b"Date: Tue", b"Server: up", b"X-Own: \xe9"]
    assert block.has_date and not block.has_length
    # a Connection header naming only what is dropped anyway
    assert lines(response_fields([(b"Connection", b"keep-alive, X-Own"), (b"X-Own", b"up")], [("X-Own", "gw")]).lines) == [
        b"Server: gateway", b"X-Own: gw"]


def test_what_counts_as_a_gateway_header() -> None:
    for name in ("x-gateway-tenant", "x_gateway_tenant", "x-gateway_key-id", "x_gateway-", "x-gateway-"):
        assert is_gateway_header(name), name
    for name in ("x-gateway", "x-gatewayx-a", "x-gatewa-", "xx-gateway-a", "x-custom", "x-forwarded-for"):
        assert not is_gateway_header(name), name


def test_request_ids_the_client_may_choose() -> None:
    for value in ("abcd1234", "a" * 128, "req-1.2_3:4", "0123456789abcdef0123456789abcdef"):
        assert sane_request_id(value), value
    for value in (None, "", "short", "a" * 129, "has space1", "semi;colon", "\u00e9" * 8, "abc\n12345"):
        assert not sane_request_id(value), value


def test_request_headers_dropped_in_either_spelling_and_the_rest_kept_in_order() -> None:
    incoming = CIMultiDictProxy(CIMultiDict([
        ("X-First", "1"), ("X-Gateway-Tenant", "spoof"), ("x_gateway_key_id", "spoof"), ("X-Middle", "2"),
        ("X_Forwarded_For", "6.6.6.6"), ("X-Under_Score", "kept"), ("Authorization", "Bearer x"),
        ("X_Custom", "kept"), ("Xgateway-a", "kept"), ("Y-Gateway-Tenant", "kept"), ("X-Last", "3"),
    ]))
    assert upstream_request_headers(incoming, []) == [
        ("X-First", "1"), ("X-Middle", "2"), ("X-Under_Score", "kept"), ("X_Custom", "kept"),
        ("Xgateway-a", "kept"), ("Y-Gateway-Tenant", "kept"), ("X-Last", "3"),
    ]
    assert upstream_request_headers(CIMultiDictProxy(CIMultiDict([("A", "1")])), []) == [("A", "1")]
