"""What a handler reads and answers: a client's request, its body as it arrives, and the
response, with the bytes of a response head built in one pass.

These are the client side's own types rather than aiohttp's: `web.BaseRequest` and
`web.Response` carry a router, cookies, a URL object and a payload writer per request, all of
which the proxy path paid for and never used.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import SERVER, GatewayError

if TYPE_CHECKING:
    from gateway.http.connection import ClientConnection



class HeaderBlock(NamedTuple):
    """A relayed response's header lines as bytes, each ending in CRLF, built in one pass from
    the upstream parser's raw fields (`headers.response_fields`): no decoding, no multidict."""

    lines: bytes
    has_length: bool
    has_date: bool


Headers = CIMultiDict[str] | dict[str, str] | HeaderBlock

_REASONS = {status.value: status.phrase for status in HTTPStatus}
NO_BODY_STATUSES = frozenset({204, 304})


class Body:
    """A request body as it arrives: fed by the connection's parser, read by one handler."""

    __slots__ = ("_chunks", "_size", "_eof", "_error", "_waiter", "_on_read")

    def __init__(self, on_read: Callable[[], None] | None = None) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = on_read is None  # without a reader to tell, there is no body to come
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._on_read = on_read

    @property
    def buffered(self) -> int:
        return self._size

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._chunks

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._eof:
            self._error = error
            self._wake()

    def discard(self) -> None:
        self._chunks.clear()
        self._size = 0

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def readany(self) -> bytes:
        """Everything that has arrived, waiting for some; b"" once the body has ended."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._on_read is not None:
            self._on_read()
        return data


EMPTY_BODY = Body()


class Request:
    """One request head, parsed and validated by the connection; the body streams in `content`."""

    __slots__ = ("method", "raw_path", "version", "headers", "content_length", "body_exists", "content",
                 "keep_alive", "remote", "continued", "_conn")

    def __init__(
        self,
        conn: ClientConnection,
        method: str,
        raw_path: str,
        version: str,
        headers: CIMultiDictProxy[str],
        content_length: int | None,
        content: Body,
        keep_alive: bool,
        remote: str,
    ) -> None:
        self._conn = conn
        self.method = method
        self.raw_path = raw_path
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.body_exists = content is not EMPTY_BODY
        self.content = content
        self.keep_alive = keep_alive
        self.remote = remote
        self.continued = False

    def send_continue(self) -> None:
        """`100 Continue`: the client that asked for it sends its body only now."""
        self.continued = True
        self._conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def start_stream(self, status: int, reason: str | None, headers: Headers) -> None:
        self._conn.start_stream(self, status, reason, headers)

    async def write(self, data: bytes) -> None:
        await self._conn.write_body(data)

    def write_eof(self) -> None:
        self._conn.end_stream()

    def abort(self) -> None:
        """Cut the connection: the one honest signal once a response is partly sent."""
        self._conn.abort()


class Response:
    """A whole answer, sent in one write; or, with `sent`, one the handler has streamed itself."""

    __slots__ = ("status", "reason", "headers", "body", "close", "sent")

    def __init__(
        self,
        status: int,
        headers: Headers | None = None,
        body: bytes = b"",
        *,
        reason: str | None = None,
        close: bool = False,
        sent: bool = False,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers: Headers = headers if headers is not None else {}
        self.body = body
        self.close = close
        self.sent = sent


def json_response(status: int, body: bytes, headers: Iterable[tuple[str, str]], request_id: str) -> Response:
    out: CIMultiDict[str] = CIMultiDict(headers)
    out["Content-Type"] = "application/json"
    out["Server"] = SERVER
    out["X-Request-Id"] = request_id
    return Response(status, out, body)


def error_response(error: GatewayError, request_id: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    out: CIMultiDict[str] = CIMultiDict(error.headers)
    for name, value in extra:
        out[name] = value
    out["Content-Type"] = "application/json"
    out["Server"] = SERVER
    out["X-Request-Id"] = request_id
    return Response(error.status, out, error.body(), close=error.closes_connection)


_date_second = 0
_date_line = b""


def _date() -> bytes:
    """The Date header line, formatted once a second."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_line = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
    return _date_line


_status_lines: dict[tuple[int, str | None], bytes] = {}


def declares_length(headers: Headers) -> bool:
    if type(headers) is HeaderBlock:
        return headers.has_length
    return "Content-Length" in headers


def response_head(status: int, reason: str | None, headers: Headers, framing: bytes) -> bytes:
    """Status line, headers and the gateway's framing lines (length, chunking, Connection)."""
    line = _status_lines.get((status, reason))
    if line is None:
        line = f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Unknown')}\r\n".encode("latin-1")
        if len(_status_lines) < 1024 and (reason is None or len(reason) <= 64):  # an upstream's own
            _status_lines[(status, reason)] = line                               # phrases: bounded
    if type(headers) is HeaderBlock:
        return line + headers.lines + (b"" if headers.has_date else _date()) + framing + b"\r\n"
    fields = "\r\n".join(map(": ".join, headers.items()))  # type: ignore[union-attr]
    date = b"" if "Date" in headers else _date()
    head = line + (fields + "\r\n").encode("latin-1") if fields else line
    return head + date + framing + b"\r\n"
