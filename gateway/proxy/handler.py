"""The proxy pipeline: one straight line from transport check to streamed upstream exchange.

It runs on aiohttp's low-level `web.Server` rather than a `web.Application`: the gateway does
its own routing on a table compiled at startup, so the router and middleware chain would only
add cost to every request. Cheapest refusals come first.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from aiohttp import web

from gateway.errors import GatewayError, HeadersTooLarge, InternalError
from gateway.proxy.forward import Forwarder
from gateway.proxy.headers import sane_request_id, upstream_request_headers
from gateway.proxy.pipeline import Guard, RequestScope
from gateway.proxy.transport import TransportPolicy
from gateway.routing import RouteTable, normalize_path

log = logging.getLogger("gateway.proxy")

Endpoint = Callable[[web.BaseRequest, RequestScope], Awaitable[web.StreamResponse]]


class Observer(Protocol):
    def started(self) -> None: ...
    def finished(self, scope: RequestScope) -> None: ...


class ProxyHandler:
    """Handles every request of one proxy listener (HTTPS, or plain behind a trusted proxy)."""

    def __init__(
        self,
        *,
        routes: RouteTable,
        forwarder: Forwarder,
        transport: TransportPolicy,
        guard: Guard,
        plain: bool = False,
        endpoints: Mapping[str, Endpoint] | None = None,
        observer: Observer | None = None,
        max_header_total_bytes: int = 65536,
    ) -> None:
        self.routes = routes  # replaced whole on reload; a matched request keeps its Match
        self._max_header_total = max_header_total_bytes
        self._forwarder = forwarder
        self._transport = transport
        self._guard = guard
        self._plain = plain
        self._endpoints = dict(endpoints or {})
        self._observer = observer
        # Request ids: a random per-process prefix and a counter, unique without a syscall each.
        prefix = os.urandom(8).hex()
        counter = itertools.count(1)
        self._new_request_id = lambda: f"{prefix}{next(counter):016x}"

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id")
        if not sane_request_id(request_id):
            request_id = self._new_request_id()
        scope = RequestScope(request_id=request_id, started=time.perf_counter(), method=request.method)
        observer = self._observer
        if observer is not None:
            observer.started()
        try:
            response = await self._handle(request, scope)
        except GatewayError as err:
            scope.error_code = err.code
            response = err.response(request_id)
            for name, value in scope.response_headers:
                response.headers[name] = value
            if err.closes_connection:
                await self._answer_and_close(request, response)
        except Exception:
            log.exception("unhandled error in proxy pipeline", extra={"request_id": request_id})
            response = InternalError().response(request_id)
        except BaseException:
            scope.status = 499  # the client went away (nginx's convention); nothing to answer
            if observer is not None:
                observer.finished(scope)
            raise
        scope.status = response.status
        if observer is not None:
            observer.finished(scope)
        return response

    @staticmethod
    async def _answer_and_close(request: web.BaseRequest, response: web.StreamResponse) -> None:
        """Send the answer now and close: aiohttp would otherwise linger reading the rest of a
        body from a client that has just been refused for sending it too slowly."""
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.close()  # after the buffered answer is flushed

    async def _handle(self, request: web.BaseRequest, scope: RequestScope) -> web.StreamResponse:
        # aiohttp bounds each field and their number, not their sum: 100 fields of 8 KB would
        # otherwise be buffered and sent on to the upstream.
        if sum(len(name) + len(value) for name, value in request.raw_headers) > self._max_header_total:
            raise HeadersTooLarge()
        peer = self._transport.peer(request, plain=self._plain)
        scope.client_ip = peer.client_ip
        raw_path, sep, query = request.raw_path.partition("?")
        path = normalize_path(raw_path)
        scope.path = path
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            return await endpoint(request, scope)
        match = self.routes.match(request.method, path)
        route = match.route
        scope.route = route
        upstream = await self._guard(request, scope, match)
        scope.response_headers.append(("X-Request-Id", scope.request_id))
        headers = upstream_request_headers(request.headers, scope.upstream_headers)
        headers["Host"] = upstream.host_header
        headers["X-Forwarded-For"] = peer.forwarded_for
        headers["X-Forwarded-Proto"] = "https"
        if peer.forwarded_host:
            headers["X-Forwarded-Host"] = peer.forwarded_host
        headers["X-Request-Id"] = scope.request_id
        target = match.forward_path(upstream) + sep + query
        scope.upstream_started = time.perf_counter()
        return await self._forwarder.forward(
            request, upstream, target, headers, route.timeout, scope.response_headers
        )
