"""HTTP/1.1 to upstreams: keep-alive connections on asyncio Protocols, parsed by httptools.

aiohttp's `ClientSession` spends most of a proxied request's CPU building request and response
objects, tracing hooks and connector bookkeeping that a proxy does not need. A connection here
is one Protocol with httptools' (llhttp's) response parser; a pool keeps idle ones per origin.
The semantics a proxy must keep are here: 1xx responses skipped, HEAD/204/304 without a body,
bodies delimited by length, chunks or the end of the connection, read backpressure, write flow
control, and stale keep-alive connections told apart from real failures so that a request that
can be replayed is retried once on a fresh connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from typing import Protocol

import httptools

from gateway.http.deadline import Deadline
from gateway.http.flow import FlowControl

log = logging.getLogger("gateway.proxy")

_HIGH_WATER = 256 * 1024    # pause reading from the upstream when this much body is unread
_TLS_WARN_EVERY = 60.0      # seconds between two warnings of one upstream's failing TLS handshake


class Origin(Protocol):
    """Where a pool connects: the gateway's routes' `Upstream` is one (the engine knows no routes)."""

    @property
    def scheme(self) -> str: ...  # "http", "https", or "unix" (host: the socket's path)
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def origin(self) -> str: ...  # scheme://host[:port], for messages
    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...  # https: None for the pool's own
    @property
    def server_name(self) -> str | None: ...  # https: the name to verify, None for `host`
    @property
    def pool_key(self) -> tuple[object, ...]: ...  # connections are shared within a key only


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the HTTP exchange."""


class StaleConnection(UpstreamError):
    """A reused keep-alive connection closed before answering: the request was never handled."""


class UpstreamTimedOut(UpstreamError):
    """The upstream took longer than the route's timeout to answer, or to send more body."""


class UpstreamConnection(FlowControl):
    """One connection to an upstream, carrying one exchange at a time."""

    def __init__(self) -> None:
        super().__init__(asyncio.get_running_loop())
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        # the current exchange
        self._head: asyncio.Future[None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._informational = False
        self._got_bytes = False
        self._head_request = False
        self._error: UpstreamError | None = None
        self._deadline = Deadline(self._loop, self._expire)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self.complete = False
        self.keep_alive = False

    # -- exchange API -------------------------------------------------------------------------

    def begin(self, head_request: bool) -> None:
        """Get ready for the response to a request about to be written."""
        self._head = self._loop.create_future()
        self._head_request = head_request
        self._got_bytes = False
        self._error = None
        self.status = 0
        self.reason = b""
        self.headers = []
        self._body.clear()
        self._buffered = 0
        self.complete = False
        self.keep_alive = False

    def arm(self, seconds: float) -> None:
        """Fail the exchange and close the connection unless `disarm` comes first (a deadline
        moved, not a timer handle made per wait: `deadline.py`)."""
        self._deadline.arm(seconds)

    def disarm(self) -> None:
        self._deadline.disarm()

    def _expire(self) -> None:
        self._fail(UpstreamTimedOut("upstream timed out"))
        self.close()

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise self._error or UpstreamError("upstream connection closed")
        self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            await self._writable()  # released by resume_writing, or by the exchange's failure or end
        if self.closed and self._error is not None:
            raise self._error

    def response_head(self) -> asyncio.Future[None]:
        """Awaited for the response head: the future itself, not a coroutine around it (each
        level of coroutines between the task and the future is paid twice per request)."""
        assert self._head is not None
        return self._head

    def take(self) -> bytes:
        """The body received so far, without waiting (all of it once `complete`)."""
        if not self._body:
            return b""
        chunk = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._read_paused and not self.closed:
            self._resume_reading()
        return chunk

    async def read(self, timeout: float) -> bytes:
        """Everything of the body received so far, waiting up to `timeout` for some; b"" at the end."""
        while True:
            if self._body:
                return self.take()
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._body_waiter = self._loop.create_future()
            self.arm(timeout)
            try:
                await self._body_waiter
            finally:
                self.disarm()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and not self._read_paused

    def close(self) -> None:
        self._deadline.cancel()
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed response from upstream: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._deadline.cancel()  # an exchange in progress fails below, not by its timeout
        head = self._head
        if head is not None and not head.done():
            if self.reused and not self._got_bytes:
                self._fail(StaleConnection("keep-alive connection closed by the upstream"))
            else:
                self._fail(UpstreamError(f"upstream closed the connection: {exc or 'EOF'}"))
        elif head is not None and not self.complete and self._error is None:  # a head, then the end
            if self._delimited():
                self._fail(UpstreamError("upstream closed the connection mid-body"))
            else:
                self.complete = True  # a body without length ends with the connection
                self.keep_alive = False
                self._wake_body()
        self._wake_writer()

    def _delimited(self) -> bool:
        """Whether the body has a length or chunks (else it ends with the connection, RFC 9112
        6.3: also when its transfer coding does not end in `chunked`): asked only when the
        connection ends before the body does, not for every response."""
        if self.status in (204, 304):
            return True
        coding: bytes | None = None
        length = False
        for name, value in self.headers:
            lname = name.lower()
            if lname == b"transfer-encoding":
                coding = value
            elif lname == b"content-length":
                length = True
        if coding is not None:
            return coding.rpartition(b",")[2].strip().lower() == b"chunked"
        return length

    # -- httptools callbacks ----------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                self._fail(UpstreamError("upstream switched protocols unasked"))
                self.close()
                return
            self._informational = True  # 100 Continue, 103 Early Hints: the real answer follows
            self.headers = []
            self.reason = b""
            return
        self.status = status
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        if self._head_request:
            # llhttp cannot be told that a HEAD answer has no body; the exchange ends here and
            # the connection is not reused, so a Content-Length cannot desynchronise it.
            self.complete = True
            self.keep_alive = False
            self._wake_body()

    def on_body(self, body: bytes) -> None:
        if self._head_request:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._read_paused:
            self._pause_reading()
        self._wake_body()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self._head_request:
            return
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake_body()

    # -- internals ----------------------------------------------------------------------------

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
            head.exception()  # retrieved here: a caller that gave up must not log it
        self._wake_body()
        self._wake_writer()

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(None)


class UpstreamPool:
    """Idle keep-alive connections per upstream origin, newest first, closed after `keepalive`."""

    def __init__(self, *, keepalive: float, connect_timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context or ssl.create_default_context()
        self._idle: dict[tuple[object, ...], list[tuple[UpstreamConnection, float]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # asyncio.get_running_loop() costs a getpid()
        self._tls_warned: dict[tuple[str, str | None], float] = {}  # when each upstream's TLS failure was logged

    def _now(self) -> float:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop.time()

    def idle(self, upstream: Origin) -> UpstreamConnection | None:
        """A kept connection to reuse, without awaiting anything; None: `connect`."""
        idle = self._idle.get(upstream.pool_key)
        if idle:
            now = self._now()
            while idle:
                conn, since = idle.pop()
                if conn.closed or now - since > self._keepalive:
                    conn.close()
                    continue
                conn.reused = True
                return conn
        return None

    async def connect(self, upstream: Origin, timeout: float) -> UpstreamConnection:
        """A fresh connection, within the connect timeout (or the route's, if shorter)."""
        loop = asyncio.get_running_loop()
        tls = upstream.scheme == "https"
        try:
            async with asyncio.timeout(min(timeout, self._connect_timeout)):
                if upstream.scheme == "unix":  # the gateway's own internal servers (the tenant portal)
                    _, conn = await loop.create_unix_connection(UpstreamConnection, upstream.host)
                else:
                    _, conn = await loop.create_connection(
                        UpstreamConnection, upstream.host, upstream.port,
                        ssl=(upstream.ssl_context or self._ssl) if tls else None,
                        server_hostname=(upstream.server_name or upstream.host) if tls else None,
                    )
        except TimeoutError:
            raise UpstreamTimedOut(f"connecting to {upstream.origin} timed out") from None
        except ssl.SSLError as exc:  # a certificate not trusted or not for the name: a setup problem
            self._warn_tls(upstream, exc)
            raise UpstreamError(f"cannot connect to {upstream.origin}: {exc}") from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {upstream.origin}: {exc}") from None
        return conn

    def _warn_tls(self, upstream: Origin, exc: ssl.SSLError) -> None:
        """The client only sees 502: the operator is told why, once a minute per upstream and name."""
        key = (upstream.origin, upstream.server_name)
        now = self._now()
        if now - self._tls_warned.get(key, -_TLS_WARN_EVERY) < _TLS_WARN_EVERY:
            return
        if len(self._tls_warned) >= 1024:
            self._tls_warned.clear()
        self._tls_warned[key] = now
        log.warning("upstream TLS handshake failed: every request to it gets 502", extra={
            "upstream": upstream.origin, "server_name": upstream.server_name or upstream.host,
            "error": getattr(exc, "verify_message", None) or exc.reason or str(exc)})

    def release(self, upstream: Origin, conn: UpstreamConnection) -> None:
        """Keep a connection whose exchange ended cleanly; close anything else."""
        if self._closed or not conn.reusable:
            conn.close()
            return
        self._idle.setdefault(upstream.pool_key, []).append((conn, self._now()))
        if self._sweeper is None:
            assert self._loop is not None
            self._sweeper = self._loop.call_later(self._keepalive, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        horizon = loop.time() - self._keepalive
        remaining = False
        for key, idle in list(self._idle.items()):
            keep = []
            for conn, since in idle:
                if conn.closed or since < horizon:
                    conn.close()
                else:
                    keep.append((conn, since))
            if keep:
                self._idle[key] = keep
                remaining = True
            else:
                del self._idle[key]
        if remaining:
            self._sweeper = loop.call_later(self._keepalive, self._sweep)

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for conn, _ in idle:
                conn.close()
        self._idle.clear()
