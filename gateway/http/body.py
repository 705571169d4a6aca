"""Reading a client's request body under a size limit and an idle deadline.

A client that announces a body and then sends it slowly, or never, would otherwise hold a handler
until the connection dies. Every wait for body bytes here
is bounded by `server.body_timeout` and answered 408; the size limit is checked as bytes arrive,
so an oversized body is refused without being buffered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.errors import PayloadTooLarge, RequestTimeout
from gateway.http.messages import Request


def _too_slow() -> RequestTimeout:
    return RequestTimeout("the request body was not received in time")


async def body_chunks(request: Request, limit: int, idle_timeout: float) -> AsyncIterator[bytes]:
    """The body as it arrives; each wait for the next bytes is at most `idle_timeout`."""
    content = request.content
    seen = 0
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk = await content.readany()
        except TimeoutError:
            raise _too_slow() from None
        if not chunk:
            return
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge()
        yield chunk


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, which must arrive within `timeout` and hold at most `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge()
    parts: list[bytes] = []
    size = 0
    content = request.content
    try:
        async with asyncio.timeout(timeout):
            while chunk := await content.readany():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge()
                parts.append(chunk)
    except TimeoutError:
        raise _too_slow() from None
    return parts[0] if len(parts) == 1 else b"".join(parts)
