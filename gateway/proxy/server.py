"""aiohttp's low-level server with the contract's JSON envelope for errors it raises itself.

A request that aiohttp's parser refuses (bad request line, oversized header, invalid chunk size,
both Content-Length and Transfer-Encoding) never reaches the gateway's handler; aiohttp answers
it with a plain-text page. Subclassing `RequestHandler.handle_error` is the hook aiohttp offers for
that answer, so those clients get the same JSON error as every other refusal.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.errors import BadRequest, GatewayError, InternalError, PayloadTooLarge

log = logging.getLogger("gateway.proxy")


class _HeadersTooLarge(BadRequest):
    status, default_message = 431, "request header fields too large"


def _error_for(status: int, message: str | None) -> GatewayError:
    if status == 413:
        return PayloadTooLarge()
    if status == 431:
        return _HeadersTooLarge()
    if 400 <= status < 500:
        return BadRequest("malformed HTTP request")  # the parser's detail stays in the debug log
    return InternalError()


class _JsonErrorHandler(RequestHandler):
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
    def __call__(self) -> RequestHandler:
        kwargs: dict[str, Any] = self._kwargs
        return _JsonErrorHandler(self, loop=self._loop, **kwargs)
