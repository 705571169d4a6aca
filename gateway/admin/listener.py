"""The admin listener's connections: aiohttp's, except for requests it cannot parse.

aiohttp answers malformed HTTP (a garbage request line, an over-long header, both
`Content-Length` and `Transfer-Encoding`) itself, before any middleware runs, with a text/plain
body quoting the parser and a traceback in the log (aio-libs/aiohttp#3287 asks for a hook; there
is none). The contract wants the JSON envelope with `X-Request-Id` on both listeners, so each
connection's protocol here renders those answers as the gateway's own refusals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.errors import BadRequest, GatewayError, InternalError

log = logging.getLogger("gateway.admin")


class _ContractErrors(RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is already under way: nothing to add
            raise ConnectionError("the response has started; the connection is cut")
        error: GatewayError
        if status < 500:
            error = BadRequest("malformed HTTP request")
            log.debug("malformed request on the admin listener", extra={"error": str(exc or message)})
        else:
            error = InternalError()
            log.error("unhandled error on the admin listener", exc_info=exc)
        response = error.response(os.urandom(12).hex())
        response.set_status(status)
        response.force_close()
        return response


async def listen(runner: web.AppRunner, sock: socket.socket) -> asyncio.AbstractServer:
    """Accept admin connections on `sock` for a set-up runner; close the result to stop accepting."""
    manager = runner.server
    assert manager is not None, "the runner is set up first"
    loop = asyncio.get_running_loop()
    # access_log=None switches aiohttp's access log off, as `web.AppRunner(access_log=None)` does
    return await loop.create_server(
        lambda: _ContractErrors(manager, loop=loop, access_log=None),  # type: ignore[arg-type]
        sock=sock)
