"""The proxy listener's HTTP/1.1 server: one asyncio Protocol per client connection, requests
parsed by httptools (llhttp, the parser aiohttp and Node use), one handler task per request.

aiohttp's server spent about a third of a proxied request's CPU on machinery a proxy does not
use, so the client side is built like the upstream side (`upstream.py`). What it keeps, and
what it adds that aiohttp lacked:

- every refusal is the contract's JSON error: malformed or ambiguous requests (llhttp refuses
  `Content-Length` with `Transfer-Encoding`, duplicate lengths, obs-fold, bare LF, NUL, bad
  chunk sizes) get 400, oversized heads 431, and the connection closes, since its bytes can no
  longer be read unambiguously;
- heads are bounded per field (`server.max_header_bytes`), in total
  (`server.max_header_total_bytes`), in count and in request-line length, while they arrive;
- a head must arrive within `server.header_timeout` of its first byte (or of the connection's
  opening), else 408 (slowloris); idle keep-alive connections close after
  `server.keepalive_timeout`;
- pipelined requests are answered in order; a body the handler did not read is read to its end
  and thrown away (up to a bound) so the keep-alive connection stays usable;
- reads pause while a body waits unread, writes wait while the client is slow to take them;
- a client that goes away cancels its handler; a graceful stop lets requests in flight finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest, GatewayError, HeadersTooLarge, RequestTimeout
from gateway.proxy.messages import (
    EMPTY_BODY,
    NO_BODY_STATUSES,
    Body,
    Headers,
    Request,
    Response,
    error_response,
    response_head,
)

log = logging.getLogger("gateway.proxy")

Handler = Callable[[Request], Awaitable[Response]]

_HIGH_WATER = 256 * 1024     # stop reading while this much request body waits unread
_MAX_PIPELINED = 16          # heads parsed ahead of the one being answered
_LINGER_BYTES = 1 << 20      # unread body worth reading to keep a connection; more: close
_VERSIONS = frozenset({"1.0", "1.1"})


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    linger_timeout: float = 30.0
    max_line_bytes: int = 8190
    max_field_bytes: int = 16384
    max_header_total_bytes: int = 65536
    max_header_count: int = 128


class _Refused(Exception):
    """Raised inside a parser callback; the error to answer is on the connection."""


class ClientConnection(asyncio.Protocol):
    """One client connection: parses requests, runs the handler for one at a time, answers."""

    __slots__ = (
        "_server", "_loop", "_limits", "_parser", "transport", "_remote", "_timer", "_timer_kind",
        "_url", "_fields", "_head_size", "_head_bytes", "_in_head", "_parsing", "_queue", "_task",
        "_closing", "_stopped", "_refusal", "_write_paused", "_drain_waiter", "_read_paused",
        "_discarding", "_discarded", "_chunked", "_streaming",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self._limits = server.limits
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._remote = ""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = ""
        self._url = b""
        self._fields: list[tuple[str, str]] = []
        self._head_size = 0
        self._head_bytes = 0           # raw bytes of a head still arriving (one field can be huge)
        self._in_head = False
        self._parsing: Request | None = None    # the request whose body the parser is in
        self._queue: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False          # answer what is in hand, then close
        self._stopped = False          # the parser can read no further (error or upgrade)
        self._refusal: GatewayError | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self._discarding = False
        self._discarded = 0
        self._chunked = False
        self._streaming = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._remote = peer[0] if isinstance(peer, tuple) else ""
        self._server.connections.add(self)
        self._arm("head", self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._disarm()
        self._server.forget(self)
        if self._parsing is not None:
            self._parsing.content.fail(ConnectionResetError("the client closed the connection"))
        if self._task is not None:
            self._task.cancel()
        self._queue.clear()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client closed the connection"))

    def eof_received(self) -> bool:
        # A half-closed client may still read its answer (TLS has no half-close: asyncio closes
        # those itself): keep the write side open while a request is in hand.
        if self._parsing is not None:
            self._parsing.content.fail(ConnectionResetError("the client closed the connection"))
        self._closing = True
        return self._task is not None and self.transport is not None \
            and self.transport.get_extra_info("sslcontext") is None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        if self._timer_kind == "idle":
            self._arm("head", self._limits.header_timeout)  # the first byte of the next head
        was_in_head = self._in_head
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgraded()
        except httptools.HttpParserError:
            self._refuse(self._refusal or BadRequest("malformed HTTP request"))
            return
        if self._in_head:
            if was_in_head:
                self._head_bytes += len(data)
            limits = self._limits
            if self._head_bytes > limits.max_header_total_bytes + limits.max_line_bytes:
                self._refuse(HeadersTooLarge())

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = b""
        self._fields = []
        self._head_size = 0
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_line_bytes:
            self._refusal = BadRequest("the request line is too long")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._head_size += size
        limits = self._limits
        if (size > limits.max_field_bytes or self._head_size > limits.max_header_total_bytes
                or len(self._fields) >= limits.max_header_count):
            self._refusal = HeadersTooLarge()
            raise _Refused
        self._fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        version = parser.get_http_version()
        if version not in _VERSIONS:
            self._refusal = BadRequest("only HTTP/1.0 and HTTP/1.1 are served")
            raise _Refused
        headers = CIMultiDictProxy(CIMultiDict(self._fields))
        length: int | None = 0
        content = EMPTY_BODY
        if "Transfer-Encoding" in headers:  # llhttp let it through only if it ends in chunked
            length = None
            content = Body(self._body_read)
        else:
            declared = headers.get("Content-Length")
            if declared is not None:
                length = int(declared)
                if length:
                    content = Body(self._body_read)
        if content is not EMPTY_BODY and parser.should_upgrade():
            # llhttp would hand the body over as upgraded bytes, unparsed: it cannot be forwarded.
            self._refusal = BadRequest("a request asking to upgrade the connection cannot have a body")
            raise _Refused
        request = Request(
            self, parser.get_method().decode("ascii"), self._url.decode("latin-1"), version, headers,
            length, content, parser.should_keep_alive(), self._remote,
        )
        self._parsing = request
        if self._task is None and not self._discarding:
            self._start(request)
        else:
            self._queue.append(request)
            if len(self._queue) >= _MAX_PIPELINED:
                self._pause_reading()

    def on_body(self, body: bytes) -> None:
        if self._discarding:
            self._discarded += len(body)
            if self._discarded > _LINGER_BYTES:
                self._stopped = True
                self._close()
            return
        request = self._parsing
        if request is not None:
            request.content.feed(body)
            if request.content.buffered > _HIGH_WATER:
                self._pause_reading()

    def on_message_complete(self) -> None:
        request = self._parsing
        self._parsing = None
        if request is not None:
            request.content.feed_eof()
        if self._discarding:
            self._discarding = False
            self._next()

    # -- flow control -----------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()

    def _body_read(self) -> None:
        if len(self._queue) < _MAX_PIPELINED:
            self._resume_reading()

    async def drain(self) -> None:
        if self._write_paused and self.transport is not None:
            self._drain_waiter = self._loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self.transport is None:
            raise ConnectionResetError("the client closed the connection")

    # -- timers -----------------------------------------------------------------------------

    def _arm(self, kind: str, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(seconds, self._expire)
        self._timer_kind = kind

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_kind = ""

    def _expire(self) -> None:
        kind, self._timer, self._timer_kind = self._timer_kind, None, ""
        if self.transport is None:
            return
        if kind == "head" and self._task is None:
            log.debug("closing a connection whose request head took over %ss", self._limits.header_timeout)
            self._refuse(RequestTimeout("the request head was not received in time"))
        else:  # idle keep-alive, or the rest of an answered body that never came
            self._close()

    # -- requests and answers ---------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self._disarm()
        self._task = self._loop.create_task(self._serve(request))

    async def _serve(self, request: Request) -> None:
        try:
            response = await self._server.handler(request)
            if not response.sent:
                self.send(request, response)
        except asyncio.CancelledError:
            return  # the client went away (or the stop's grace period ended)
        except ConnectionError:
            self.abort()
            return
        except Exception:
            log.exception("error answering a request")
            self.abort()
            return
        finally:
            self._task = None
            self._streaming = False
        self._finished(request)

    def _finished(self, request: Request) -> None:
        if self.transport is None:
            return
        if not request.keep_alive or self._closing:
            self._close()
            return
        if self._parsing is request:
            # The handler answered without reading the whole body (a refusal, a small error):
            # read the rest and throw it away, so the next request on this connection is found.
            request.content.discard()
            self._discarding = True
            self._discarded = 0
            self._arm("linger", self._limits.linger_timeout)
            self._resume_reading()
            return
        self._next()

    def _next(self) -> None:
        if self._queue:
            self._start(self._queue.popleft())
            if len(self._queue) < _MAX_PIPELINED and self._parsing is None:
                self._resume_reading()
        elif self._closing or self._stopped:
            self._close()
        elif self._in_head:
            self._arm("head", self._limits.header_timeout)
        else:
            self._arm("idle", self._limits.keepalive_timeout)

    def _keep_alive(self, request: Request, response_close: bool) -> bool:
        keep = request.keep_alive and not response_close and not self._closing and not self._stopped
        if keep and self._parsing is request and request.headers.get("Expect", "").lower() == "100-continue" \
                and not request.continued:
            keep = False  # the client holds its body back for a 100 that will not come: close instead
        request.keep_alive = keep
        return keep

    def _framing(self, request: Request, keep: bool) -> bytes:
        if not keep:
            return b"Connection: close\r\n"
        return b"Connection: keep-alive\r\n" if request.version == "1.0" else b""

    def send(self, request: Request, response: Response) -> None:
        """A whole answer in one write."""
        transport = self.transport
        if transport is None:
            return
        keep = self._keep_alive(request, response.close)
        framing = self._framing(request, keep)
        headers = response.headers
        body = response.body
        status = response.status
        if status not in NO_BODY_STATUSES and "Content-Length" not in headers:
            framing += b"Content-Length: %d\r\n" % len(body)
        head = response_head(status, response.reason, headers, framing)
        if request.method == "HEAD" or status in NO_BODY_STATUSES or not body:
            transport.write(head)
        else:
            transport.write(head + body)

    def start_stream(self, request: Request, status: int, reason: str | None, headers: Headers) -> None:
        """Send a response head; its body follows through `write_body` and `end_stream`."""
        transport = self.transport
        if transport is None:
            raise ConnectionResetError("the client closed the connection")
        framing = b""
        chunked = False
        if request.method == "HEAD" or status in NO_BODY_STATUSES or "Content-Length" in headers:
            keep = self._keep_alive(request, False)
        elif request.version == "1.1":
            keep = self._keep_alive(request, False)
            framing = b"Transfer-Encoding: chunked\r\n"
            chunked = True
        else:
            keep = self._keep_alive(request, True)  # an HTTP/1.0 body without length ends with the connection
        self._chunked = chunked
        self._streaming = request.method != "HEAD" and status not in NO_BODY_STATUSES
        transport.write(response_head(status, reason, headers, framing + self._framing(request, keep)))

    async def write_body(self, data: bytes) -> None:
        if not data or not self._streaming:
            return
        transport = self.transport
        if transport is None:
            raise ConnectionResetError("the client closed the connection")
        transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)
        if self._write_paused:
            await self.drain()

    def end_stream(self) -> None:
        if self._chunked and self._streaming and self.transport is not None:
            self.transport.write(b"0\r\n\r\n")
        self._streaming = False

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        self._disarm()
        if self.transport is not None:
            self.transport.close()  # after what is buffered has been sent

    def _upgraded(self) -> None:
        """CONNECT, or `Connection: upgrade`: llhttp reads nothing further. The request is
        answered (CONNECT is refused by the path check; Upgrade is hop-by-hop and dropped),
        then the connection closes."""
        self._stopped = True
        self._closing = True

    def _refuse(self, error: GatewayError) -> None:
        """Answer a request the parser cannot read, and close: what follows cannot be trusted."""
        self._stopped = True
        self._closing = True
        self._refusal = None
        self._queue.clear()
        request = self._parsing
        if request is not None and self._task is not None:
            # the head was fine and is being handled; its body is not: the handler answers
            request.content.fail(error)
            return
        if self._task is not None:
            return  # the request in hand is answered first; then the connection closes
        transport = self.transport
        if transport is None:
            return
        if isinstance(error, BadRequest) and error.status == 400:
            log.debug("refused a malformed request")
        response = error_response(error, os.urandom(16).hex())
        head = response_head(response.status, None, response.headers,
                             b"Connection: close\r\nContent-Length: %d\r\n" % len(response.body))
        transport.write(head + response.body)
        self._close()

    def cut(self) -> asyncio.Task[None] | None:
        """The end of a graceful stop's grace: the connection goes, its handler is cancelled."""
        task = self._task
        if task is not None:
            task.cancel()
        self.abort()
        return task

    def stop(self) -> None:
        """Graceful stop: close at once if idle, else after the request in hand is answered."""
        self._closing = True
        if self._task is None and not self._queue:
            self._close()


class HttpServer:
    """The listener: accepts connections and keeps count of them for a graceful stop."""

    def __init__(self, handler: Handler, limits: Limits) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._all_closed: asyncio.Event | None = None  # set during a stop, once none is left

    async def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        self._server = await self.loop.create_server(
            lambda: ClientConnection(self), sock=sock, ssl=ssl_context, backlog=1024
        )

    def forget(self, conn: ClientConnection) -> None:
        self.connections.discard(conn)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def shutdown(self, grace: float) -> None:
        """Let requests in flight finish within `grace`, then cut whatever is left."""
        self.stop_accepting()
        self._all_closed = asyncio.Event()
        for conn in list(self.connections):
            conn.stop()
        if self.connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), grace)
            except TimeoutError:
                log.warning("%d connections still busy after the %ss grace period: cut", len(self.connections), grace)
        tasks = [task for conn in list(self.connections) if (task := conn.cut()) is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)  # their cancellation still records each request
