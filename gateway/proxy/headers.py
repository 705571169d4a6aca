"""Header hygiene between client and upstream, with every name set built once at import.

What reaches the upstream is the client's request minus hop-by-hop headers (and those named in
`Connection`), minus credentials, forwarding headers and any client-sent `X-Gateway-*` identity
(each in either spelling, `-` or `_`), plus what the gateway itself asserts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter
from typing import TypeGuard

from multidict import CIMultiDictProxy

from gateway.errors import SERVER
from gateway.http.messages import HeaderBlock

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# The client's address as proxies and CDNs state it, and as frameworks look for it (Rack, Express,
# PHP's usual `HTTP_CLIENT_IP` chain, Spring): never the client's to state. The gateway sets
# `X-Real-IP` and `X-Forwarded-For` itself, from the peer or a trusted proxy's chain.
CLIENT_ADDRESS = frozenset(
    {
        "x-real-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "x-original-forwarded-for",
        "client-ip",
        "x-forwarded",
        "forwarded-for",
        "x-originating-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-proxyuser-ip",
    }
)

# Set by the gateway itself, or meaningful only between the client and the gateway.
_REQUEST_DROP = HOP_BY_HOP | {
    "authorization",
    "x-api-key",
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
    "expect",
    "content-length",  # set again from the length llhttp validated (or chunked framing)
    # a method other than the one the gateway routed and authorised on (Express's method-override,
    # Rails, ASP.NET read these)
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    # a path other than the one the gateway routed on (Symfony, Zend and IIS rewrite modules read these)
    "x-original-url",
    "x-rewrite-url",
} | CLIENT_ADDRESS
_RESPONSE_DROP = HOP_BY_HOP | {"x-request-id"}
_RESPONSE_DROP_RAW = frozenset(name.encode("latin-1") for name in _RESPONSE_DROP)
_SERVER_LINE = f"Server: {SERVER}".encode("latin-1")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{8,128}")


def is_gateway_header(lname: str) -> bool:
    """True for X-Gateway-* in any case and with `_` for `-`, which some servers fold together."""
    return lname[:10].replace("_", "-") == "x-gateway-"


def sane_request_id(value: str | None) -> TypeGuard[str]:
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


_DROP, _KEEP, _CONNECTION = 0, 1, 2


def _judge(name: str) -> int:
    """What becomes of a client header of this name: dropped, kept, or read as `Connection`."""
    lname = name.lower()
    if lname == "connection":
        return _CONNECTION
    if lname in _REQUEST_DROP:
        return _DROP
    if lname[:1] == "x" and is_gateway_header(lname):
        return _DROP
    if "_" in lname and lname.replace("_", "-") in _REQUEST_DROP:
        return _DROP  # X_Forwarded_For: CGI and WSGI servers fold it into X-Forwarded-For
    return _KEEP


# A client's header names as sent (their case kept) and `Connection` values: a few dozen of each in
# practice, each judged or parsed once (bounded against a client inventing new ones).
_judged: dict[str, int] = {}
_listed: dict[str, frozenset[str]] = {}


def _listed_in(connection: str) -> frozenset[str]:
    named = _listed.get(connection)
    if named is None:
        named = frozenset(t.strip().lower() for t in connection.split(",") if t.strip())
        if len(_listed) < 256:
            _listed[connection] = named
    return named


def upstream_request_headers(
    incoming: CIMultiDictProxy[str], extra: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The client's headers made safe to forward, followed by the gateway's own. A list, not a
    multidict: every header the gateway sets afterwards (Host, forwarding, request id, framing)
    is one this drops, so appending it is setting it."""
    judged = _judged
    out: list[tuple[str, str]] = []
    connection: str | None = None
    for name, value in incoming.items():
        how = judged.get(name)
        if how is None:
            how = _judge(name)
            if len(judged) < 4096:
                judged[name] = how
        if how == _KEEP:
            out.append((name, value))
        elif how == _CONNECTION:
            connection = value if connection is None else connection + "," + value
    if connection is not None:
        named = _listed_in(connection)  # `keep-alive` nearly always: dropped anyway
        if not named <= _REQUEST_DROP:
            out = [(name, value) for name, value in out if name.lower() not in named]
    out.extend(extra)
    return out


_dropped: dict[tuple[str, ...], frozenset[bytes]] = {}
_first = itemgetter(0)


_ALONGSIDE = frozenset({"link"})  # the gateway's `Link` (a Sunset's) joins the upstream's, it replaces none


def _drop_with(own_names: tuple[str, ...]) -> frozenset[bytes]:
    """The response drop set plus the names the gateway sets itself: a handful of combinations
    (with or without limits, Retry-After, the IETF fields, Sunset), each built once."""
    drop = _dropped.get(own_names)
    if drop is None:
        drop = _RESPONSE_DROP_RAW | {name.lower().encode("latin-1") for name in own_names
                                     if name.lower() not in _ALONGSIDE}
        if len(_dropped) < 256:
            _dropped[own_names] = drop
    return drop


_named: dict[bytes, frozenset[bytes]] = {}


def _named_by(connection: bytes) -> frozenset[bytes]:
    """The header names a `Connection` value lists (`keep-alive` nearly always), parsed once each."""
    named = _named.get(connection)
    if named is None:
        named = frozenset(t.strip().lower() for t in connection.split(b",") if t.strip())
        if len(_named) < 256:
            _named[connection] = named
    return named


def response_fields(raw: list[tuple[bytes, bytes]], own: list[tuple[str, str]]) -> HeaderBlock:
    """The upstream's response headers for the client, from the parser's raw pairs: minus
    hop-by-hop headers, those named in `Connection` and those the gateway sets itself (`own`: rate
    limits, request id, Sunset, which replace any the upstream sent; a `Link` is added to the
    upstream's), then `Server` if the upstream named none, then the gateway's own.

    One pass, the pieces joined once: a `Connection` that names a header not dropped anyway (it
    names `keep-alive`, if anything, nearly always) sends the head through `_fields_listed`."""
    drop = _drop_with(tuple(map(_first, own)))
    out: list[bytes] = []
    server = date = length = False
    for name, value in raw:
        lname = name.lower()
        if lname in drop:
            if lname == b"connection" and not _named_by(value) <= drop:
                return _fields_listed(raw, own, drop)
            continue
        if lname == b"server":
            server = True
        elif lname == b"date":
            date = True
        elif lname == b"content-length":
            length = True
        out += (name, b": ", value, b"\r\n")
    if not server:
        out.append(_SERVER_LINE_CRLF)
    if own:
        out.append(("\r\n".join(map(": ".join, own)) + "\r\n").encode("latin-1"))
    return HeaderBlock(b"".join(out), length, date)


_SERVER_LINE_CRLF = _SERVER_LINE + b"\r\n"


def _fields_listed(raw: list[tuple[bytes, bytes]], own: list[tuple[str, str]], drop: frozenset[bytes]) -> HeaderBlock:
    """`response_fields` for a head whose `Connection` lists more headers to drop, before or after it:
    its pass again over the head without them (nor `Connection`, dropped anyway: no second detour)."""
    for name, value in raw:
        if name.lower() == b"connection":
            drop = drop | _named_by(value)
    return response_fields([field for field in raw if field[0].lower() not in drop], own)
