"""The access step of the proxy pipeline: credential, identity, authorization, rate limit.

Cheapest refusals first: header parsing and the key checksum cost no lookup; a cached identity
costs no I/O; only a cache miss reaches the store, and a store that cannot answer is a 503
rather than a guess.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.access.assertion import IdentityAssertions
from gateway.access.authorize import authorize
from gateway.access.identity import derive
from gateway.access.limits import limit_headers
from gateway.credentials.keyformat import hash_key, key_length, parse_key
from gateway.credentials.parse import Credential, extract
from gateway.errors import (
    ExpiredCredentials,
    InvalidCredentials,
    RateLimited,
    RevokedCredentials,
    StoreUnavailable,
)
from gateway.exchange import Identity, RequestScope
from gateway.http.messages import Request
from gateway.keystore.base import KeyStore, StoreError
from gateway.keystore.cache import IdentityCache
from gateway.keystore.lastused import LastUsedRecorder
from gateway.keystore.models import Principal
from gateway.ratelimit import Decision, RateLimiter
from gateway.routing import Match, Route, Upstream

log = logging.getLogger("gateway.access")

# A JWT verifier resolves a token to the id of the key it was minted from (or refuses).
TokenVerifier = Callable[[str], str]


class AccessGuard:
    def __init__(
        self,
        *,
        store: KeyStore,
        cache: IdentityCache[Identity],
        limiter: RateLimiter | None,
        last_used: LastUsedRecorder,
        plan_limits: Mapping[str, int],
        key_prefix: str,
        ietf_headers: bool = False,
        clock: Callable[[], float] = time.time,
        verify_token: TokenVerifier | None = None,
        assertions: IdentityAssertions | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._limiter = limiter
        self._last_used = last_used
        self._plan_limits = dict(plan_limits)
        self._fallback_limit = min(self._plan_limits.values(), default=60)
        self._prefix = key_prefix
        self._key_length = key_length(key_prefix)
        # the in-memory limiter decides without I/O: called directly, not awaited
        self._hit_now: Callable[[Sequence[tuple[str, int]]], Decision] | None = getattr(limiter, "hit_sync", None)
        self._ietf = ietf_headers
        self._clock = clock
        self._verify_token = verify_token
        self._assertions = assertions

    def set_plans(self, plan_limits: Mapping[str, int]) -> None:
        self._plan_limits = dict(plan_limits)
        self._fallback_limit = min(self._plan_limits.values(), default=60)

    def _derive(self, principal: Principal | None) -> Identity | None:
        if principal is None:
            return None
        return derive(principal, self._plan_limits, self._fallback_limit)

    async def _load(self, fetch: Awaitable[Principal | None]) -> Identity | None:
        try:
            return self._derive(await fetch)
        except StoreError as exc:
            log.warning("key store unavailable", extra={"error": str(exc)})
            raise StoreUnavailable() from None

    def _lookup(self, credential: Credential) -> str:
        """What the identity cache knows a credential by: the key's hash, or a token's key id."""
        if credential.is_jwt:
            if self._verify_token is None:
                raise InvalidCredentials("tokens are not accepted here")
            return "id:" + self._verify_token(credential.secret)
        if len(credential.secret) != self._key_length or not credential.secret.isascii():
            raise InvalidCredentials("malformed API key")  # not even hashed
        return hash_key(credential.secret)

    async def _fetch(self, credential: Credential, lookup: str) -> Identity | None:
        """A cache miss: the store, for a key whose shape and checksum are right."""
        if credential.is_jwt:
            key_id = lookup[3:]
            return await self._cache.fetch(lookup, lambda: self._load(self._store.get_principal_by_key_id(key_id)))
        if parse_key(credential.secret, self._prefix) is None:
            raise InvalidCredentials("malformed API key")
        return await self._cache.fetch(lookup, lambda: self._load(self._store.get_principal_by_hash(lookup)))

    def _checked(self, credential: Credential, identity: Identity | None) -> Identity:
        if (
            identity is not None
            and credential.key_id is not None
            and not credential.is_jwt
            and not hmac.compare_digest(identity.key_id.encode(), credential.key_id.encode())
        ):
            identity = None
        if identity is None:
            raise InvalidCredentials()
        if identity.revoked:
            raise RevokedCredentials()
        if identity.expires_at is not None and self._clock() >= identity.expires_at:
            raise ExpiredCredentials()
        return identity

    async def identify(self, credential: Credential) -> Identity:
        """The live identity behind a credential, or the contract's 401.

        A cached identity is found without checking the key's shape: only well-formed keys
        are ever cached, so a hit is one; the checksum is checked before a store lookup."""
        lookup = self._lookup(credential)
        found, identity = self._cache.peek(lookup)
        if not found:
            identity = await self._fetch(credential, lookup)
        return self._checked(credential, identity)

    def _checks(self, identity: Identity, route: Route | None) -> list[tuple[str, int]]:
        checks = [(identity.bucket, identity.limit_per_minute)]
        if route is not None and route.rate_limit_per_minute:
            checks.append((f"r:{identity.key_id}:{route.name}", route.rate_limit_per_minute))
        return checks

    def _counted(self, decision: Decision, scope: RequestScope) -> None:
        scope.response_headers.extend(limit_headers(decision, ietf=self._ietf))
        if not decision.allowed:
            scope.rate_limited = True
            raise RateLimited()

    async def count(self, identity: Identity, route: Route | None, scope: RequestScope) -> None:
        """Count the request against the key (and route) limits; refuse with 429 when over."""
        if self._limiter is not None:
            self._counted(await self._limiter.hit(self._checks(identity, route)), scope)

    def __call__(self, request: Request, scope: RequestScope, match: Match) -> Upstream | Awaitable[Upstream]:
        """The upstream for an admitted request, decided without awaiting anything when the
        identity is cached and the limiter is in memory (the common case: no coroutine is made);
        otherwise a coroutine that finishes the decision after the store or the limiter answers."""
        route = match.route
        if not route.auth:
            return route.upstream
        credential = extract(request.headers, route.auth)
        scope.auth_method = credential.method
        lookup = self._lookup(credential)
        found, identity = self._cache.peek(lookup)
        if not found:
            return self._admit_fetched(request, scope, match, credential, lookup)
        return self._admit(request, scope, match, credential, identity)

    async def _admit_fetched(
        self, request: Request, scope: RequestScope, match: Match, credential: Credential, lookup: str
    ) -> Upstream:
        identity = await self._fetch(credential, lookup)
        upstream = self._admit(request, scope, match, credential, identity)
        return upstream if isinstance(upstream, Upstream) else await upstream

    def _admit(
        self, request: Request, scope: RequestScope, match: Match, credential: Credential, identity: Identity | None
    ) -> Upstream | Awaitable[Upstream]:
        identity = self._checked(credential, identity)
        scope.identity = identity
        authorize(identity, request.method, match)
        if self._limiter is not None:
            checks = self._checks(identity, match.route)
            if self._hit_now is None:
                return self._admit_counted(scope, match.route, credential, identity, checks)
            self._counted(self._hit_now(checks), scope)
        return self._admitted(scope, match.route, credential, identity)

    async def _admit_counted(
        self, scope: RequestScope, route: Route, credential: Credential, identity: Identity,
        checks: list[tuple[str, int]],
    ) -> Upstream:
        assert self._limiter is not None
        self._counted(await self._limiter.hit(checks), scope)
        return self._admitted(scope, route, credential, identity)

    def _admitted(self, scope: RequestScope, route: Route, credential: Credential, identity: Identity) -> Upstream:
        self._last_used.touch(identity.key_id)
        scope.upstream_headers.extend(identity.headers)
        scope.upstream_headers.append(("X-Gateway-Auth-Method", credential.method))
        if self._assertions is not None:
            scope.upstream_headers.append(
                ("X-Gateway-Identity", self._assertions.token(identity, route.name, credential.method))
            )
        if identity.environment == "test" and route.sandbox_upstream is not None:
            return route.sandbox_upstream
        return route.upstream
