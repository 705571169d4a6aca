"""The access step of the proxy pipeline (the `Guard` of `exchange.py`).

Each request goes through four steps, cheapest refusals first:

1. identify: the credential (header parsing and the key's checksum cost no lookup), then its
   identity from the cache, or on a miss from the store (a store that cannot answer is a 503,
   not a guess), checked live (not revoked, not expired). A revoked or expired key's 401 still
   names the key in the scope, so the call log and the key's usage show it (a burst of them is
   an anomaly: a leaked or forgotten key in use); the `try` around it costs nothing unless it
   raises;
2. authorize: scope, resources, the owner's role, tenant and owner not disabled (`authorize.py`);
3. count: the key's (and the route's) rate limits, 429 when over;
4. admit: last-used time, identity headers for the upstream, and the upstream itself.

Fast path: with the identity cached and the limiter in memory (or none, or a leased permit of
the Redis limiter in this worker), `__call__` runs all four inline and returns the upstream,
making no coroutine (a few % of a request's CPU, measured). Slow path: otherwise it returns
`_decide`, a coroutine running the same four steps that awaits the store on a cache miss and a remote limiter's answer.
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
# Told of each request made with a canary key: key id, client address, user agent, method, path.
CanaryReport = Callable[[str, str, "str | None", str, str], None]


class CanaryCredentials(InvalidCredentials):
    """A canary key: the very answer of an unknown key (same class, body and headers), and the
    identity it stands for, to report on the side."""

    def __init__(self, identity: Identity) -> None:
        super().__init__()
        self.identity = identity


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
        expiring_soon_days: int = 20,
        keys_page: str | None = None,
        on_canary: CanaryReport | None = None,
        hash_secret: Callable[[str], str] = hash_key,
    ) -> None:
        self._store = store
        self._cache = cache
        self._limiter = limiter
        self._last_used = last_used
        self._plan_limits = dict(plan_limits)
        self._fallback_limit = min(self._plan_limits.values(), default=60)
        self._prefix = key_prefix
        self._key_length = key_length(key_prefix)
        # A limiter that decides in memory offers `hit_sync` (ratelimit/base.py): called directly,
        # not awaited. Any other limiter is remote, and a request it counts takes the slow path.
        self._hit_now: Callable[[Sequence[tuple[str, int]]], Decision] | None = getattr(limiter, "hit_sync", None)
        # A remote limiter may still decide some requests in the worker (leased permits):
        # `hit_local` answers those, or None for the ones Redis must decide.
        self._hit_local: Callable[[Sequence[tuple[str, int]]], Decision | None] | None = (
            None if self._hit_now is not None else getattr(limiter, "hit_local", None))
        self._remote_limiter = limiter is not None and self._hit_now is None and self._hit_local is None
        self._ietf = ietf_headers
        self._clock = clock
        self._verify_token = verify_token
        self._assertions = assertions
        self._expiring_soon_days = expiring_soon_days
        self._keys_page = keys_page
        self._on_canary = on_canary
        self._hash_secret = hash_secret  # a seam for tests (they spy on it): compiled, the module's global is bound early

    def set_plans(self, plan_limits: Mapping[str, int]) -> None:
        self._plan_limits = dict(plan_limits)
        self._fallback_limit = min(self._plan_limits.values(), default=60)

    def now(self) -> float:
        return self._clock()

    def set_sunset(self, expiring_soon_days: int, keys_page: str | None) -> None:
        """What identities filled from now on say of a key that expires soon (see `_live`)."""
        self._expiring_soon_days = expiring_soon_days
        self._keys_page = keys_page

    # -- the decision: fast path, slow path ------------------------------------------------------

    def __call__(self, request: Request, scope: RequestScope, match: Match) -> Upstream | Awaitable[Upstream]:
        """The upstream for an admitted request, or an awaitable of it (the slow path)."""
        route = match.route
        if not route.auth:
            return route.upstream
        credential = extract(request.headers, route.auth)
        scope.auth_method = credential.method
        lookup = self._lookup(credential)
        found, cached = self._cache.peek(lookup)
        if not found or self._remote_limiter:
            return self._decide(request, scope, match, credential, None if found else lookup, cached)
        try:
            identity = scope.identity = self._live(credential, cached, scope)  # 1. identify
        except (RevokedCredentials, ExpiredCredentials):
            scope.identity = cached  # the refused key's own: its 401s are in its call log and usage
            raise
        except CanaryCredentials as used:  # logged as an unknown key: no identity in the scope
            self._canary_used(used.identity, request, scope)
            raise
        authorize(identity, request.method, match)                          # 2. authorize
        if self._hit_now is not None:                                       # 3. count
            self._enforce(self._hit_now(self._buckets(identity, route)), scope)
        elif self._hit_local is not None:
            buckets = self._buckets(identity, route)
            decided = self._hit_local(buckets)
            if decided is None:
                return self._count_then_admit(identity, credential, route, scope, buckets)
            self._enforce(decided, scope)
        return self._admit(identity, credential, route, scope)              # 4. admit

    async def _count_then_admit(
        self, identity: Identity, credential: Credential, route: Route, scope: RequestScope,
        buckets: list[tuple[str, int]],
    ) -> Upstream:
        """Steps 3 and 4 when the limiter must ask its backend (no leased permit in the worker)."""
        assert self._limiter is not None
        self._enforce(await self._limiter.hit(buckets), scope)
        return self._admit(identity, credential, route, scope)

    async def _decide(
        self, request: Request, scope: RequestScope, match: Match, credential: Credential, lookup: str | None,
        cached: Identity | None,
    ) -> Upstream:
        """The slow path: the same four steps, awaiting the store (`lookup` is set on a cache
        miss) and the limiter."""
        fetched = await self._fetch(credential, lookup) if lookup is not None else cached
        try:
            identity = scope.identity = self._live(credential, fetched, scope)  # 1. identify
        except (RevokedCredentials, ExpiredCredentials):
            scope.identity = fetched  # the refused key's own, as on the fast path
            raise
        except CanaryCredentials as used:
            self._canary_used(used.identity, request, scope)
            raise
        authorize(identity, request.method, match)                          # 2. authorize
        await self.count(identity, match.route, scope)                      # 3. count
        return self._admit(identity, credential, match.route, scope)        # 4. admit

    # -- 1. identify ------------------------------------------------------------------------------

    async def identify(self, credential: Credential, scope: RequestScope | None = None,
                       request: Request | None = None) -> Identity:
        """The live identity behind a credential, or the contract's 401 (the gateway's own
        endpoints' way in; the proxy path does the same in `__call__`).

        A cached identity is found without checking the key's shape: only well-formed keys
        are ever cached, so a hit is one; the checksum is checked before a store lookup."""
        lookup = self._lookup(credential)
        found, identity = self._cache.peek(lookup)
        if not found:
            identity = await self._fetch(credential, lookup)
        try:
            return self._live(credential, identity, scope)
        except CanaryCredentials as used:
            self._canary_used(used.identity, request, scope)
            raise

    def _canary_used(self, identity: Identity, request: Request | None, scope: RequestScope | None) -> None:
        if self._on_canary is not None:
            self._on_canary(identity.key_id, scope.client_ip if scope is not None else "",
                            request.headers.get("User-Agent") if request is not None else None,
                            request.method if request is not None else "",
                            scope.path if scope is not None else "")

    def _lookup(self, credential: Credential) -> str:
        """What the identity cache knows a credential by: the key's hash, or a token's key id."""
        if credential.is_jwt:
            if self._verify_token is None:
                raise InvalidCredentials("tokens are not accepted here")
            return "id:" + self._verify_token(credential.secret)
        if len(credential.secret) != self._key_length or not credential.secret.isascii():
            raise InvalidCredentials("malformed API key")  # not even hashed
        return self._hash_secret(credential.secret)

    async def _fetch(self, credential: Credential, lookup: str) -> Identity | None:
        """A cache miss: the store, for a key whose shape and checksum are right."""
        if credential.is_jwt:
            key_id = lookup[3:]
            return await self._cache.fetch(lookup, lambda: self._load(self._store.get_principal_by_key_id(key_id)))
        if parse_key(credential.secret, self._prefix) is None:
            raise InvalidCredentials("malformed API key")
        return await self._cache.fetch(lookup, lambda: self._load(self._store.get_principal_by_hash(lookup)))

    async def _load(self, fetch: Awaitable[Principal | None]) -> Identity | None:
        try:
            principal = await fetch
        except StoreError as exc:
            log.warning("key store unavailable", extra={"error": str(exc)})
            raise StoreUnavailable() from None
        if principal is None:
            return None
        return derive(principal, self._plan_limits, self._fallback_limit,
                      expiring_soon_days=self._expiring_soon_days, keys_page=self._keys_page)

    def _live(self, credential: Credential, identity: Identity | None, scope: RequestScope | None) -> Identity:
        """The identity if it is the credential's and still valid, else the contract's 401.
        A key that expires within `keys.expiring_soon_days` has its answer carry `Sunset` (and
        `Link` to the portal): headers made once per cache fill, one comparison here."""
        if (
            identity is not None
            and credential.key_id is not None
            and not credential.is_jwt
            and not hmac.compare_digest(identity.key_id.encode(), credential.key_id.encode())
        ):
            identity = None
        if identity is None:
            raise InvalidCredentials()
        if identity.canary:  # before any other check: revoked or expired, it still looks unknown
            raise CanaryCredentials(identity)
        if identity.revoked:
            raise RevokedCredentials()
        if identity.expires_at is not None:
            now = self._clock()
            if now >= identity.expires_at:
                raise ExpiredCredentials()
            if now >= identity.sunset_from and scope is not None:
                scope.response_headers.extend(identity.sunset)
        return identity

    # -- 3. count ---------------------------------------------------------------------------------

    async def count(self, identity: Identity, route: Route | None, scope: RequestScope) -> Decision | None:
        """Count the request against the key (and route) limits; refuse with 429 when over.
        The limiter's decision (None: no rate limits)."""
        if self._limiter is None:
            return None
        buckets = self._buckets(identity, route)
        decision = self._hit_now(buckets) if self._hit_now is not None else await self._limiter.hit(buckets)
        self._enforce(decision, scope)
        return decision

    def _buckets(self, identity: Identity, route: Route | None) -> list[tuple[str, int]]:
        buckets = [(identity.bucket, identity.limit_per_minute)]
        if route is not None and route.rate_limit_per_minute:
            buckets.append((f"r:{identity.key_id}:{route.name}", route.rate_limit_per_minute))
        return buckets

    def _enforce(self, decision: Decision, scope: RequestScope) -> None:
        """The limiter's decision on the answer: its headers, and a 429 when over."""
        scope.response_headers.extend(limit_headers(decision, ietf=self._ietf))
        if not decision.allowed:
            scope.rate_limited = True
            raise RateLimited()

    # -- 4. admit ---------------------------------------------------------------------------------

    def _admit(self, identity: Identity, credential: Credential, route: Route, scope: RequestScope) -> Upstream:
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
