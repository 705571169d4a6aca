"""aiohttp's low-level server with the contract's JSON envelope for errors it raises itself,
and a deadline for request heads.

A request that aiohttp's parser refuses (bad request line, oversized header, invalid chunk size,
both Content-Length and Transfer-Encoding) never reaches the gateway's handler; aiohttp answers
it with a plain-text page. Subclassing `RequestHandler.handle_error` is the hook aiohttp offers for
that answer, so those clients get the same JSON error as every other refusal.

aiohttp has no timeout for a request head that arrives a byte at a time (slowloris): its
keep-alive timer only closes an idle connection, 75 s after the last response. The handler here
gives every head `server.header_timeout` from its first byte (or from the connection's opening),
then answers 408 and closes, so thousands of such connections cost a timer each, not a worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.errors import SERVER, BadRequest, GatewayError, HeadersTooLarge, InternalError, PayloadTooLarge, RequestTimeout

log = logging.getLogger("gateway.proxy")


def _error_for(status: int, message: str | None) -> GatewayError:
    if status == 413:
        return PayloadTooLarge()
    if status == 431:
        return HeadersTooLarge()
    if 400 <= status < 500:
        return BadRequest("malformed HTTP request")  # the parser's detail stays in the debug log
    return InternalError()


def _timeout_answer() -> bytes:
    error = RequestTimeout("the request head was not received in time")
    body = error.body()
    return (
        b"HTTP/1.1 408 Request Timeout\r\nServer: %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\nX-Request-Id: %s\r\n\r\n%s" % (SERVER.encode(), len(body), os.urandom(16).hex().encode(), body)
    )


class _JsonErrorHandler(RequestHandler):
    __slots__ = ("_header_timeout", "_head_deadline")

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages or self._request_in_progress:
            # A whole head has arrived (or these are body bytes): the head deadline is met.
            if self._head_deadline is not None:
                self._disarm_head_deadline()
        elif self._head_deadline is None and self._waiting_for_head():
            self._arm_head_deadline()

    def _waiting_for_head(self) -> bool:
        """aiohttp's handler is idle, awaiting a request (its own test before a keep-alive close);
        not, say, reading what is left of a refused request's body."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self._loop.call_later(self._header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        transport = self.transport
        if transport is None or self._request_in_progress or self._messages or not self._waiting_for_head():
            return
        log.debug("closing a connection whose request head took over %ss", self._header_timeout)
        transport.write(_timeout_answer())
        self.force_close()
        transport.close()

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("error handling a request", exc_info=exc)
        else:
            log.debug("refused a malformed request: %s", message or exc)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; the connection is cut instead")
        response = _error_for(status, message).response(os.urandom(16).hex())
        response.force_close()
        return response


class GatewayServer(web.Server):
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        kwargs: dict[str, Any] = self._kwargs
        return _JsonErrorHandler(self, loop=self._loop, header_timeout=self._header_timeout, **kwargs)
