"""The proxy pipeline: one straight line from transport check to streamed upstream exchange.

It runs on the gateway's own HTTP engine (`gateway/http`) and routes on a table compiled at startup;
there is no router or middleware chain to pay for on every request. Cheapest refusals come first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping

from gateway.errors import (
    WRONG_CREDENTIALS,
    BadRequest,
    CredentialInQuery,
    GatewayError,
    HttpsRequired,
    InternalError,
)
from gateway.exchange import (
    Endpoint,
    FailedCredentials,
    Guard,
    LeakedKeys,
    Observer,
    RequestScope,
)
from gateway.http.messages import Request, Response, error_response
from gateway.proxy.forward import Forwarder
from gateway.proxy.headers import sane_request_id, upstream_request_headers
from gateway.proxy.mount import CLIENT_HEADER, Mount
from gateway.proxy.transport import Peer, TransportPolicy
from gateway.routing import Match, RouteTable, Upstream, normalize_path

log = logging.getLogger("gateway.proxy")
IN_PATH = ("an API key was sent in the URL's path, where it is logged and kept: it is marked exposed; "
           "send keys in the Authorization or X-API-Key header")


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
        failures: FailedCredentials | None = None,
        mount: Mount | None = None,
        leaks: LeakedKeys | None = None,
    ) -> None:
        self.routes = routes  # replaced whole on reload; a matched request keeps its Match
        self._forwarder = forwarder
        self._transport = transport
        self._guard = guard
        self._plain = plain
        self._endpoints = dict(endpoints or {})
        self._observer = observer
        self._failures = failures
        self._mount = mount
        self._leaks = leaks
        self._released = asyncio.Event()
        # Request ids: a random per-process prefix and a counter, unique without a syscall each.
        prefix = os.urandom(8).hex()
        counter = itertools.count(1)
        self._new_request_id: Callable[[], str] = lambda: f"{prefix}{next(counter):016x}"

    async def __call__(self, request: Request) -> Response:
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
            response = error_response(err, request_id, scope.response_headers)
            if self._failures is not None and isinstance(err, WRONG_CREDENTIALS) and scope.client_ip:
                hold = self._failures.failed(scope.client_ip)
                if hold:
                    await self._hold(hold, scope)
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, ConnectionError):
                # cancelled, or a write failed: the client went away (499, nginx's convention)
                scope.status = 499
                if observer is not None:
                    observer.finished(scope)
                raise
            log.exception("unhandled error in proxy pipeline", extra={"request_id": request_id})
            response = error_response(InternalError(), request_id)
        scope.status = response.status
        if observer is not None:
            observer.finished(scope)
        return response

    def release_held(self) -> None:
        """A graceful stop: held answers leave now (the 401 is decided) instead of using up the grace period."""
        self._released.set()

    async def _hold(self, seconds: float, scope: RequestScope) -> None:
        """The answer to a client past its failed-credential budget waits (access/failures.py)."""
        try:
            await asyncio.wait_for(self._released.wait(), seconds)
        except TimeoutError:
            pass  # held for its time
        except BaseException:
            scope.status = 499  # the client left (or the gateway stopped) while held
            if self._observer is not None:
                self._observer.finished(scope)
            raise

    def _handle(self, request: Request, scope: RequestScope) -> Awaitable[Response]:
        """Everything before the upstream, in the request's order: transport, target, the
        gateway's own endpoints, route, access, forward. A refusal raises here.

        It makes no coroutine of its own: what it returns is the forwarder's (or an endpoint's)
        coroutine, awaited by `__call__` directly, so a request waits for its upstream through one
        coroutine level fewer. Fast path: the guard decided at once (`Upstream`), and the request
        is forwarded from here. Slow path: the guard returned an awaitable (the store or a remote
        limiter had to be asked), and `_forward_when_admitted` awaits it, then forwards."""
        scope.client_ip = request.remote  # until the transport decides (a refusal there still names it)
        try:
            peer = self._transport.peer(request, plain=self._plain)
        except HttpsRequired as refusal:
            return self._refuse_plain(request, scope, refusal)
        scope.client_ip = peer.client_ip
        target = request.raw_path
        raw_path, sep, query = target.partition("?")
        if self._leaks is not None:
            # the whole target: a key in the path (`/x/<key>`, `;k=<key>`, `%3Fk=<key>`, which a
            # decoding proxy makes a query) is forwarded and logged like one in the query
            leaked = self._leaks.in_query(target)
            if leaked:  # before anything else reads the target: it goes nowhere, and is logged without its query
                return self._refuse_leaked(leaked, "query_string", request, scope, CredentialInQuery()
                                           if self._leaks.in_query(query) else CredentialInQuery(IN_PATH))
        if "#" in target:  # never sent by a client; some upstreams would cut the path there
            raise BadRequest("a fragment (#) in the request target")
        path = normalize_path(raw_path)
        mount = self._mount
        scope.path = path if mount is None else mount.shown(path)  # what records show: no link secret
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            return endpoint(request, scope)
        if mount is not None and path.startswith(mount.prefix) and mount.covers(path):
            return self._to_mount(request, scope, mount, peer, path + sep + query)
        match = self.routes.match(request.method, path)
        scope.route = match.route
        decision = self._guard(request, scope, match)
        if isinstance(decision, Upstream):
            return self._forward(request, scope, match, decision, peer, sep + query)
        return self._forward_when_admitted(decision, request, scope, match, peer, sep + query)

    def _refuse_plain(self, request: Request, scope: RequestScope, refusal: HttpsRequired) -> Awaitable[Response]:
        """Plain HTTP refused: a key it carried (any header, the query) crossed the network in
        clear text, so it is marked exposed first."""
        leaked = self._leaks.in_request(request) if self._leaks is not None else []
        if not leaked:
            raise refusal
        return self._refuse_leaked(leaked, "plain_http", request, scope, refusal)

    async def _refuse_leaked(self, leaked: list[str], reason: str, request: Request, scope: RequestScope,
                             refusal: GatewayError) -> Response:
        raw_path = request.raw_path.partition("?")[0]
        try:
            path = normalize_path(raw_path.partition("#")[0])  # for the logs, as for any refusal
        except GatewayError:
            path = ""
        assert self._leaks is not None
        if self._leaks.in_query(raw_path):
            path = ""  # the key is in the path itself: the logs get no path
        mount = self._mount
        scope.path = path if mount is None else mount.shown(path)
        await self._leaks.report(leaked, reason, request, scope)
        raise refusal

    async def _forward_when_admitted(
        self, decision: Awaitable[Upstream], request: Request, scope: RequestScope, match: Match, peer: Peer,
        query: str,
    ) -> Response:
        upstream = await decision
        return await self._forward(request, scope, match, upstream, peer, query)

    def _forward(
        self, request: Request, scope: RequestScope, match: Match, upstream: Upstream, peer: Peer, query: str
    ) -> Awaitable[Response]:
        """The forwarded request's head (client headers cleaned, the gateway's added) and the
        forwarder's coroutine that sends it and streams the answer back."""
        scope.response_headers.append(("X-Request-Id", scope.request_id))
        headers = upstream_request_headers(request.headers, scope.upstream_headers)
        headers.append(("Host", upstream.host_header))
        headers.append(("X-Forwarded-For", peer.forwarded_for))
        headers.append(("X-Real-IP", peer.client_ip))
        headers.append(("X-Forwarded-Proto", "https"))
        if peer.forwarded_host:
            headers.append(("X-Forwarded-Host", peer.forwarded_host))
        headers.append(("X-Request-Id", scope.request_id))
        target = match.forward_path(upstream) + query
        route = match.route
        return self._forwarder.forward(request, upstream, target, headers, route.timeout, route.idle_timeout, scope)

    def _to_mount(self, request: Request, scope: RequestScope, mount: Mount, peer: Peer,
                  target: str) -> Awaitable[Response]:
        """A request for the gateway's own application behind `mount` (no route, no key: it
        authenticates its own way). It gets the client's address and the host the client named
        from the gateway alone (its logs show a path without the secrets some of its paths carry:
        `_handle` redacted it, as for every request)."""
        scope.response_headers.append(("X-Request-Id", scope.request_id))
        headers = upstream_request_headers(request.headers, ())
        host = peer.forwarded_host
        headers.append(("Host", host or "localhost"))
        if host:
            headers.append(("X-Forwarded-Host", host))
        headers.append(("X-Forwarded-For", peer.forwarded_for))
        headers.append(("X-Real-IP", peer.client_ip))
        headers.append((CLIENT_HEADER, peer.client_ip))
        headers.append(("X-Forwarded-Proto", "https"))
        headers.append(("X-Request-Id", scope.request_id))
        return self._forwarder.forward(request, mount.upstream, target, headers, mount.timeout,
                                       mount.idle_timeout, scope)
