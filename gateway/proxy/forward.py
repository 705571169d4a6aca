"""Forward one request to its upstream and stream the answer back, both directions.

One `ClientSession` per process, tuned for proxying: no connection cap queue, idle upstream
connections closed before typical upstream idle timeouts, no cookie jar (cookies of one client
must never reach another), no decompression and no auto-added headers (the upstream sees what
the client sent).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import PayloadTooLarge, UpstreamTimeout, UpstreamUnavailable
from gateway.proxy.headers import client_response_headers

log = logging.getLogger("gateway.proxy")

_CHUNK = 64 * 1024
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


def create_session(*, keepalive: float, connect_timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        keepalive_timeout=keepalive,
        ttl_dns_cache=300,
        ssl=ssl.create_default_context(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        trust_env=False,
        max_field_size=16384,
        max_headers=256,
    )


class _Body:
    """The client's body as an async iterator that refuses to grow past the size cap."""

    __slots__ = ("_content", "_limit", "too_large")

    def __init__(self, content: aiohttp.StreamReader, limit: int) -> None:
        self._content = content
        self._limit = limit
        self.too_large = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._content.iter_chunked(_CHUNK):
            seen += len(chunk)
            if seen > self._limit:
                self.too_large = True
                raise PayloadTooLarge()
            yield chunk


class Forwarder:
    """Streams a request to an upstream origin and its response back to the client."""

    def __init__(self, session: aiohttp.ClientSession, *, max_body_bytes: int) -> None:
        self._session = session
        self._max_body = max_body_bytes
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        # Built once per distinct route timeout, not per request.
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, 5.0))
            self._timeouts[seconds] = timeout
        return timeout

    async def forward(
        self,
        request: web.BaseRequest,
        url: str,
        headers: CIMultiDict[str],
        timeout: float,
        response_headers: Iterable[tuple[str, str]],
    ) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > self._max_body:
            raise PayloadTooLarge()
        body: _Body | None = None
        if request.body_exists:
            body = _Body(request.content, self._max_body)
        elif request.method not in _NO_BODY_METHODS:
            headers["Content-Length"] = "0"
        try:
            upstream = await self._session.request(
                request.method,
                URL(url, encoded=True),
                headers=headers,
                data=body.__aiter__() if body is not None else None,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            )
        except PayloadTooLarge:
            raise
        except asyncio.TimeoutError:
            raise UpstreamTimeout() from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            if body is not None and body.too_large:
                raise PayloadTooLarge() from None
            log.debug("upstream unavailable: %r", exc)
            raise UpstreamUnavailable() from None
        try:
            return await self._relay(request, upstream, response_headers)
        finally:
            upstream.release()

    async def _relay(
        self,
        request: web.BaseRequest,
        upstream: aiohttp.ClientResponse,
        response_headers: Iterable[tuple[str, str]],
    ) -> web.StreamResponse:
        headers = client_response_headers(upstream.headers)
        headers.extend(response_headers)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_chunked(_CHUNK):
                await response.write(chunk)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Headers are gone already: the only honest signal left is a cut connection,
            # never a terminating chunk that would make a partial body look complete.
            log.debug("upstream stream cut: %r", exc)
            upstream.close()
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response
