"""Forward one request to its upstream and stream the answer back, both directions.

The upstream side is the gateway's own keep-alive pool (`upstream.py`), the client side its own
server (`connection.py`). The request head is built as bytes in one pass, a small body is sent with it in
one write, and a response that has fully arrived by the time its headers are read goes back in
one write too; anything larger streams with backpressure both ways.

Two clocks bound an exchange: the route's `timeout` until the response head (504 past it), then
its `idle_timeout` between body chunks, so a long download that keeps flowing is delivered whole
and one that stalls is cut. A body cut after its head has left (a stall, or an upstream that
closes or breaks mid-body) can only be told to the client by closing the connection without a
clean end; the request is recorded with the upstream's status, the error code of what happened
(`UPSTREAM_TIMEOUT`, `UPSTREAM_UNAVAILABLE`) and `truncated`, and counted as an upstream error.
"""

from __future__ import annotations

import logging
import time

from gateway.errors import PayloadTooLarge, UpstreamTimeout, UpstreamUnavailable
from gateway.exchange import RequestScope
from gateway.http.body import body_chunks, read_body
from gateway.http.messages import NO_BODY_STATUSES, HeaderBlock, Request, Response
from gateway.http.upstream import (
    StaleConnection,
    UpstreamConnection,
    UpstreamError,
    UpstreamPool,
    UpstreamTimedOut,
)
from gateway.proxy.headers import response_fields
from gateway.routing import Upstream

log = logging.getLogger("gateway.proxy")

_SMALL_BODY = 64 * 1024         # read whole and sent with the request head
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})  # idempotent


def request_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    # map/join run in C: half the time of an f-string per field (2.3 -> 1.2 µs for 20 fields)
    fields = "\r\n".join(map(": ".join, headers))
    return (method + " " + target + " HTTP/1.1\r\n" + fields + "\r\n\r\n").encode("latin-1")


class Forwarder:
    """Streams a request to an upstream origin and its response back to the client."""

    def __init__(self, pool: UpstreamPool, *, max_body_bytes: int, body_timeout: float) -> None:
        self._pool = pool
        self._max_body = max_body_bytes
        self._body_timeout = body_timeout

    async def forward(
        self,
        request: Request,
        upstream: Upstream,
        target: str,
        headers: list[tuple[str, str]],
        timeout: float,
        idle_timeout: float,
        scope: RequestScope,
    ) -> Response:
        length = request.content_length
        if length is not None and length > self._max_body:
            raise PayloadTooLarge()
        body: bytes | None = b""
        if request.body_exists:
            if request.version == "1.1" and request.headers.get("Expect", "").lower() == "100-continue":
                # The client waits for this before sending its body; it comes only now, after the
                # request passed authentication, limits and the size check.
                request.send_continue()
            if length is None:
                headers.append(("Transfer-Encoding", "chunked"))
                body = None
            else:
                headers.append(("Content-Length", str(length)))
                body = await read_body(request, length, self._body_timeout) if length <= _SMALL_BODY else None
        elif request.method not in _NO_BODY_METHODS:
            headers.append(("Content-Length", "0"))
        head = request_head(request.method, target, headers)
        scope.upstream_started = time.perf_counter()  # only now: a request refused above never reached it
        try:
            conn = await self._exchange(request, upstream, head, body, timeout)
        except UpstreamTimedOut:
            raise UpstreamTimeout() from None
        except UpstreamError as exc:
            log.debug("upstream unavailable: %s", exc)
            raise UpstreamUnavailable() from None
        try:
            fields = response_fields(conn.headers, scope.response_headers)
            status, reason = conn.status, conn.reason.decode("latin-1") or None
        except BaseException:
            conn.close()
            raise
        if conn.complete and request.method != "HEAD" and status not in NO_BODY_STATUSES:
            # The whole answer is here already (the common small JSON response): headers and
            # body leave in one write instead of one TLS record each, and no coroutine streams it.
            body = conn.take()
            self._pool.release(upstream, conn)
            return Response(status, fields, body, reason=reason)
        return await self._relay(request, upstream, conn, idle_timeout, fields, scope)

    async def _exchange(
        self, request: Request, upstream: Upstream, head: bytes, body: bytes | None, timeout: float
    ) -> UpstreamConnection:
        """Send the request and wait for the response head; retry once if a reused
        connection turns out to be closed and the request can be sent again unchanged."""
        head_request = request.method == "HEAD"
        for attempt in (1, 2):
            pool = self._pool
            conn = (pool.idle(upstream) if attempt == 1 else None) or await pool.connect(upstream, timeout)
            try:
                conn.begin(head_request)
                conn.arm(timeout)
                if body is not None:
                    conn.write(head + body if body else head)
                else:
                    conn.write(head)
                    await self._stream_body(request, conn)
                await conn.response_head()
                conn.disarm()
                return conn
            except StaleConnection:
                conn.close()
                if attempt == 2 or body is None or request.method not in _REPLAYABLE:
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    async def _stream_body(self, request: Request, conn: UpstreamConnection) -> None:
        chunked = request.content_length is None
        async for chunk in body_chunks(request, self._max_body, self._body_timeout):
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain()
        if chunked:
            conn.write(b"0\r\n\r\n")

    async def _relay(
        self,
        request: Request,
        upstream: Upstream,
        conn: UpstreamConnection,
        idle_timeout: float,
        headers: HeaderBlock,
        scope: RequestScope,
    ) -> Response:
        """A response whose body is still arriving (or has none to frame): streamed as it comes,
        each wait for more bounded by the route's idle timeout, however long the whole takes."""
        released = False
        try:
            status = conn.status
            request.start_stream(status, conn.reason.decode("latin-1") or None, headers)
            try:
                while chunk := await conn.read(idle_timeout):
                    await request.write(chunk)
            except UpstreamError as exc:
                # Headers are gone already: the only honest signal left is a cut connection,
                # never a terminating chunk that would make a partial body look complete.
                log.debug("upstream stream cut: %r", exc)
                timed_out = isinstance(exc, UpstreamTimedOut)
                scope.error_code = (UpstreamTimeout if timed_out else UpstreamUnavailable).code
                scope.truncated = True
                request.abort()
                return Response(status, sent=True)
            self._pool.release(upstream, conn)
            released = True
            request.write_eof()
            return Response(status, sent=True)
        finally:
            if not released:
                conn.close()
