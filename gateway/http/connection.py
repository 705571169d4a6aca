"""One client connection of the proxy listener: HTTP/1.1 on an asyncio Protocol, requests
parsed by httptools (llhttp, the parser aiohttp and Node use), one handler task per request.

aiohttp's server spent about a third of a proxied request's CPU on machinery a proxy does not
use, so the client side is built like the upstream side (`upstream.py`). What it keeps, and
what it adds that aiohttp lacked:

- every refusal is the contract's JSON error: malformed or ambiguous requests (llhttp refuses
  `Content-Length` with `Transfer-Encoding`, duplicate lengths, obs-fold, bare LF, NUL, bad
  chunk sizes; this module two `Host` fields, none on HTTP/1.1, or one that is no host) get 400,
  oversized heads 431, and the connection closes, since its bytes can no longer be read
  unambiguously;
- heads are bounded per field (`server.max_header_bytes`), in total
  (`server.max_header_total_bytes`), in count and in request-line length, while they arrive;
- a head must arrive within `server.header_timeout` of its first byte (or of the connection's
  opening), else 408 (slowloris); idle keep-alive connections close after
  `server.keepalive_timeout`; a client that takes no answer bytes for `server.send_timeout` is cut;
- pipelined requests are answered in order; a body the handler did not read is read to its end
  and thrown away (up to a bound) so the keep-alive connection stays usable;
- reads pause while a body waits unread, heads queue up or answers wait untaken;
- a client that goes away cancels its handler; a graceful stop lets requests in flight finish
  and starts nothing new.

The listener that makes these and stops them is `server.py`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest, GatewayError, HeadersTooLarge, RequestTimeout
from gateway.http.deadline import Deadline
from gateway.http.flow import FlowControl
from gateway.http.messages import (
    EMPTY_BODY,
    NO_BODY_STATUSES,
    Body,
    Headers,
    Request,
    Response,
    declares_length,
    error_response,
    response_head,
)

if TYPE_CHECKING:
    from gateway.http.server import HttpServer

log = logging.getLogger("gateway.proxy")

Handler = Callable[[Request], Awaitable[Response]]

_HIGH_WATER = 256 * 1024     # stop reading while this much request body waits unread
_MAX_PIPELINED = 16          # heads parsed ahead of the one being answered: reading pauses
_SLICE = 16 * 1024           # a read is parsed this much at a time inside a body, and
_HEAD_SLICE = 1024           # this much between bodies, so that a read holding thousands of
                             # pipelined heads stops near the limit above: the rest waits as
                             # bytes, not as parsed requests
_LINGER_BYTES = 1 << 20      # unread body worth reading to keep a connection; more: close
_VERSIONS = frozenset({"1.0", "1.1"})
# RFC 9112 3.2 / RFC 3986 3.2.2: uri-host [":" port], the host a reg-name, an IPv4 address or an
# [IP-literal]; empty is allowed (a target without authority). Anything else (spaces, "/", "@",
# a second value after a comma and space) is a Host some server reads differently.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[\w.~!$&'()*+,;=:-]+\]|[\w.~%!$&'()*+,;=-]*)(?::[0-9]*)?",
                   re.ASCII)
_NO_HOSTS: list[str] = []


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    linger_timeout: float = 30.0
    send_timeout: float = 60.0
    max_line_bytes: int = 8190
    max_field_bytes: int = 16384
    max_header_total_bytes: int = 65536
    max_header_count: int = 128


class _Refused(Exception):
    """Raised inside a parser callback; the error to answer is on the connection."""


class ClientConnection(FlowControl):
    """One client connection: parses requests, runs the handler for one at a time, answers."""

    __slots__ = (
        "_server", "_limits", "_parser", "_remote", "_deadline", "_timer_kind",
        "_url", "_fields", "_head_size", "_events", "_quiet", "_in_head", "_parsing", "_queue", "_task",
        "_closing", "_stopped", "_eof", "_refusal", "_pending_refusal",
        "_discarding", "_discarded", "_chunked", "_streaming", "_backlog", "_feeding",
        "_head_sent",
    )

    def __init__(self, server: HttpServer) -> None:
        super().__init__(server.loop)
        self._server = server
        self._limits = server.limits
        self._parser = httptools.HttpRequestParser(self)
        self._remote = ""
        self._deadline = Deadline(self._loop, self._expire)
        self._timer_kind = ""
        self._url = b""
        self._fields: list[tuple[str, str]] = []
        self._head_size = 0
        self._events = 0               # parser callbacks during the current feed
        self._quiet = 0                # bytes fed since the last callback (a field, trailer or chunk
                                       # extension still arriving, which httptools buffers whole)
        self._in_head = False
        self._parsing: Request | None = None    # the request whose body the parser is in
        self._queue: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False          # graceful stop: answer what is in hand, then close
        self._stopped = False          # the parser reads no further (error, upgrade, overflow)
        self._eof = False              # the client has half-closed
        self._refusal: GatewayError | None = None          # set by a callback that refuses
        self._pending_refusal: GatewayError | None = None  # answered once the requests before it are
        self._discarding = False
        self._discarded = 0
        self._chunked = False
        self._streaming = False
        self._backlog = b""            # bytes read but not parsed while the queue is full
        self._feeding = False
        self._head_sent = False        # the current answer's head is out: no other answer may follow

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._server.stopping:  # a handshake that completed after a stop began
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        self._remote = peer[0] if isinstance(peer, tuple) else ""
        self._server.connections.add(self)
        self._arm("head", self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._deadline.cancel()
        self._timer_kind = ""
        self._server.forget(self)
        if self._parsing is not None:
            self._parsing.content.fail(ConnectionResetError("the client closed the connection"))
        if self._task is not None:
            self._task.cancel()
        self._queue.clear()
        self._wake_writer(ConnectionResetError("the client closed the connection"))

    def eof_received(self) -> bool:
        # A half-closed client still reads its answers (TLS has no half-close: asyncio closes
        # those connections itself, whatever this returns): requests in hand are answered.
        self._eof = True
        if self._parsing is not None:
            self._parsing.content.fail(BadRequest("the client closed the connection before the body's end"))
        if self._task is None and not self._queue:
            return False
        return self.transport is not None and self.transport.get_extra_info("sslcontext") is None

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        if self._backlog:
            self._backlog += data  # bytes already in flight when reading paused
            return
        self._feeding = True
        try:
            if len(data) <= _HEAD_SLICE:
                self._parse(data)
                return
            offset, end = 0, len(data)
            while offset < end:
                if self._stopped:
                    return
                if len(self._queue) >= _MAX_PIPELINED:
                    self._backlog = data[offset:]
                    self._update_reading()
                    return
                size = _SLICE if self._parsing is not None else _HEAD_SLICE
                self._parse(data[offset:offset + size])
                offset += size
        finally:
            self._feeding = False

    def _parse(self, data: bytes) -> None:
        self._events = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgraded()
        except httptools.HttpParserError:
            self._refuse(self._refusal or BadRequest("malformed HTTP request"))
            return
        if self._events:
            self._quiet = 0
        else:
            self._quiet += len(data)
            if self._quiet > self._limits.max_field_bytes + self._limits.max_line_bytes:
                # One field (or trailer, or chunk extension) this long is already refused when it
                # ends; httptools would buffer it whole first.
                self._refuse(HeadersTooLarge())

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._events += 1
        self._in_head = True
        self._url = b""
        self._fields = []
        self._head_size = 0
        if self._timer_kind == "idle":
            self._arm("head", self._limits.header_timeout)  # the next head has begun

    def on_url(self, url: bytes) -> None:
        self._events += 1
        self._url += url
        if len(self._url) > self._limits.max_line_bytes:
            self._refusal = BadRequest("the request line is too long")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._events += 1
        size = len(name) + len(value)
        self._head_size += size  # trailers count towards the head's total too
        limits = self._limits
        if (size > limits.max_field_bytes or self._head_size > limits.max_header_total_bytes
                or len(self._fields) >= limits.max_header_count):
            self._refusal = HeadersTooLarge()
            raise _Refused
        self._fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._events += 1
        self._in_head = False
        if self._stopped:
            return
        parser = self._parser
        version = parser.get_http_version()
        if version not in _VERSIONS:
            self._refusal = BadRequest("only HTTP/1.0 and HTTP/1.1 are served")
            raise _Refused
        headers = CIMultiDictProxy(CIMultiDict(self._fields))
        hosts = headers.getall("Host", _NO_HOSTS)
        if len(hosts) != 1 or not _HOST.fullmatch(hosts[0]):
            self._refuse_host(hosts, version)
        length: int | None = 0
        content = EMPTY_BODY
        if "Transfer-Encoding" in headers:  # llhttp let it through only if it ends in chunked
            length = None
            content = Body(self._update_reading)
        else:
            declared = headers.get("Content-Length")
            if declared is not None:
                length = int(declared)
                if length:
                    content = Body(self._update_reading)
        if content is not EMPTY_BODY and parser.should_upgrade():
            # llhttp would hand the body over as upgraded bytes, unparsed: it cannot be forwarded.
            self._refusal = BadRequest("a request asking to upgrade the connection cannot have a body")
            raise _Refused
        request = Request(
            self, parser.get_method().decode("ascii"), self._url.decode("latin-1"), version, headers,
            length, content, parser.should_keep_alive(), self._remote,
        )
        self._parsing = request
        if self._task is None and not self._queue and not self._discarding:
            self._start(request)
        else:
            self._queue.append(request)
            self._update_reading()

    def _refuse_host(self, hosts: list[str], version: str) -> None:
        """RFC 9112 3.2: a 400 for two Host fields, none on HTTP/1.1, or one that is no host,
        since a server behind may read another host than the gateway (and `X-Forwarded-Host`)
        did. HTTP/1.0 clients may omit it."""
        if not hosts:
            if version == "1.0":
                return
            self._refusal = BadRequest("an HTTP/1.1 request needs a Host header")
        elif len(hosts) > 1:
            self._refusal = BadRequest("more than one Host header")
        else:
            self._refusal = BadRequest("the Host header is not a host")
        raise _Refused

    def on_body(self, body: bytes) -> None:
        self._events += 1
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
                self._update_reading()

    def on_chunk_header(self) -> None:
        self._events += 1

    def on_chunk_complete(self) -> None:
        self._events += 1

    def on_message_complete(self) -> None:
        self._events += 1
        request = self._parsing
        self._parsing = None
        if request is not None:
            request.content.feed_eof()
        if self._discarding:
            self._discarding = False
            self._next()

    # -- flow control (flow.py) -------------------------------------------------------------

    def _update_reading(self) -> None:
        """Read while there is room: a body waiting unread, a queue of heads parsed ahead, or
        answers the client is not taking each stop reading until they shrink."""
        if self.transport is None:
            return
        parsing = self._parsing
        full = (len(self._queue) >= _MAX_PIPELINED or self._write_paused or bool(self._backlog)
                or (parsing is not None and parsing.content.buffered > _HIGH_WATER))
        if full != self._read_paused:  # the common case, no change, costs no call
            if full:
                self._pause_reading()
            else:
                self._resume_reading()

    def _writing_resumed(self) -> None:
        if self._read_paused:
            self._update_reading()  # reads paused for a client slow to take its answers

    async def drain(self) -> None:
        """Wait until the client takes what was written, at most `send_timeout` each time."""
        if self._write_paused and self.transport is not None:
            self._arm("send", self._limits.send_timeout)
            try:
                await self._writable()
            finally:
                self._disarm()
        if self.transport is None:
            raise ConnectionResetError("the client closed the connection")

    # -- timers -----------------------------------------------------------------------------

    def _arm(self, kind: str, seconds: float) -> None:
        self._deadline.arm(seconds)
        self._timer_kind = kind

    def _disarm(self) -> None:
        self._deadline.disarm()
        self._timer_kind = ""

    def _expire(self) -> None:
        kind, self._timer_kind = self._timer_kind, ""
        if self.transport is None:
            return
        if kind == "head" and self._task is None:
            log.debug("closing a connection whose request head took over %ss", self._limits.header_timeout)
            self._refuse(RequestTimeout("the request head was not received in time"))
        elif kind in ("send", "cut"):
            log.debug("cutting a connection that took no response bytes for %ss", self._limits.send_timeout)
            self.abort()
        else:  # idle keep-alive, or the rest of an answered body that never came
            self._close()

    # -- requests and answers ---------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self._disarm()
        self._head_sent = False
        self._task = self._loop.create_task(self._serve(request))

    async def _serve(self, request: Request) -> None:
        try:
            response = await self._server.handler(request)
            if not response.sent:
                if self._head_sent:  # a streamed answer failed half-way: only a cut can say so
                    raise ConnectionAbortedError("answer cut after its head")
                self.send(request, response)
            if self._write_paused:
                await self.drain()  # one answer at a time in the buffers, however many are queued
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
        if self.transport is None or self.transport.is_closing():
            return  # cut or closing: nothing queued may start (a request must not outlive its client)
        if not request.keep_alive:
            self._close()
            return
        if self._parsing is request:
            # The handler answered without reading the whole body (a refusal, a small error):
            # read the rest and throw it away, so the next request on this connection is found.
            request.content.discard()
            self._discarding = True
            self._discarded = 0
            self._arm("linger", self._limits.linger_timeout)
            self._update_reading()
            return
        self._next()

    def _next(self) -> None:
        if self._closing:  # a graceful stop: no new work starts
            self._close()
            return
        if self._queue:
            self._start(self._queue.popleft())
        if self._backlog and not self._feeding and len(self._queue) < _MAX_PIPELINED:
            data, self._backlog = self._backlog, b""
            self.data_received(data)  # parses on where the queue filled up; may start a request
        if self._task is not None or self.transport is None:
            self._update_reading()
        elif self._pending_refusal is not None:
            self._answer_refusal(self._pending_refusal)
        elif self._closing or self._stopped or self._eof:
            self._close()
        else:
            self._update_reading()
            self._arm("head" if self._in_head else "idle",
                      self._limits.header_timeout if self._in_head else self._limits.keepalive_timeout)

    def _keep_alive(self, request: Request, response_close: bool) -> bool:
        """Whether this answer leaves the connection open, decided before its head is written."""
        keep = request.keep_alive and not response_close and not self._closing
        if keep and not self._queue and not self._backlog and (self._stopped or self._eof):
            keep = self._pending_refusal is not None  # closed by the refusal's answer instead
        if keep and self._parsing is request:  # the body is not all here
            if request.headers.get("Expect", "").lower() == "100-continue" and not request.continued:
                keep = False  # the client holds its body back for a 100 that will not come
            elif request.content_length is not None and request.content_length > _LINGER_BYTES:
                keep = False  # too much to read and throw away
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
        if status not in NO_BODY_STATUSES and not declares_length(headers):
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
        if request.method == "HEAD" or status in NO_BODY_STATUSES or declares_length(headers):
            keep = self._keep_alive(request, False)
        elif request.version == "1.1":
            keep = self._keep_alive(request, False)
            framing = b"Transfer-Encoding: chunked\r\n"
            chunked = True
        else:
            keep = self._keep_alive(request, True)  # an HTTP/1.0 body without length ends with the connection
        self._chunked = chunked
        self._head_sent = True
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
        self._stopped = True
        self._queue.clear()
        self._backlog = b""
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # after what is buffered has been sent ...
            self._arm("cut", self._limits.send_timeout)  # ... which a client that reads nothing bounds
        else:
            self._disarm()

    def _upgraded(self) -> None:
        """CONNECT, or `Connection: upgrade`: llhttp reads nothing further. The request is
        answered (CONNECT is refused by the path check; Upgrade is hop-by-hop and dropped),
        then the connection closes."""
        self._stopped = True

    def _refuse(self, error: GatewayError) -> None:
        """A request the parser cannot read: answered once those before it are, then the
        connection closes, since nothing after it can be read unambiguously."""
        self._stopped = True
        self._refusal = None
        request = self._parsing
        if request is not None:  # a head that was fine, and a body that is not
            if self._discarding:
                self._close()
            else:
                request.content.fail(error)  # whoever reads that body answers the error
            return
        if self._task is not None or self._queue:
            self._pending_refusal = error
            return
        self._answer_refusal(error)

    def _answer_refusal(self, error: GatewayError) -> None:
        self._pending_refusal = None
        transport = self.transport
        if transport is None:
            return
        response = error_response(error, os.urandom(16).hex())
        head = response_head(response.status, None, response.headers,
                             b"Connection: close\r\nContent-Length: %d\r\n" % len(response.body))
        transport.write(head + response.body)
        self._close()

    def stop(self) -> None:
        """Graceful stop: close at once if idle, else after the request in hand is answered."""
        self._closing = True
        if self._task is None and not self._queue:
            self._close()

    def cut(self) -> asyncio.Task[None] | None:
        """The end of a graceful stop's grace: the connection goes, its handler is cancelled."""
        task = self._task
        if task is not None:
            task.cancel()
        self.abort()
        return task
