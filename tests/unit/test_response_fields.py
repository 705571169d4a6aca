"""What of an upstream's response head reaches the client (`headers.response_fields`)."""

from __future__ import annotations

from gateway.proxy.headers import response_fields


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
    from multidict import CIMultiDict, CIMultiDictProxy

    from gateway.proxy.headers import upstream_request_headers

    incoming = CIMultiDictProxy(CIMultiDict([
        ("Connection", "keep-alive,X-A,x-b"), ("Connection", " ,X-D "), ("X-A", "1"), ("X-B", "2"), ("X-C", "3"),
        ("X-D", "4"), ("X-Real-IP", "6.6.6.6"), ("True_Client_IP", "6.6.6.6"), ("Cf-Connecting-Ip", "6.6.6.6"),
    ]))
    assert upstream_request_headers(incoming, [("X-Own", "y")]) == [("X-C", "3"), ("X-Own", "y")]
