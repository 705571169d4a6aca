"""The access decision of the proxy path (`access/guard.py`) on its own, step by step: identify,
authorize, count, admit; fast path (nothing awaited) and slow path (the store, a remote limiter).

Real parts where they are cheap (the identity cache, the memory limiter, the route table); a store
that counts its lookups and can fail; a clock that moves when told. Fast enough to run per mutant
(bench/mutation)."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.access.guard import AccessGuard
from gateway.credentials.keyformat import generate_key, hash_key
from gateway.credentials.parse import Credential
from gateway.errors import (
    ExpiredCredentials,
    InsufficientScope,
    InvalidCredentials,
    MissingCredentials,
    RateLimited,
    RevokedCredentials,
    StoreUnavailable,
)
from gateway.exchange import Identity, RequestScope
from gateway.http.connection import ClientConnection, Limits
from gateway.http.messages import EMPTY_BODY, Request, Response
from gateway.http.server import HttpServer
from gateway.keystore.base import StoreError
from gateway.keystore.cache import IdentityCache
from gateway.keystore.models import ApiKey, Principal, Tenant
from gateway.ratelimit.base import Decision
from gateway.ratelimit.memory import MemoryRateLimiter
from gateway.routing import Upstream
from tests.conftest import FakeClock
from tests.unit.test_routing import table

NOW = 1_800_000_000.0
ROUTES = table([
    {"name": "visitors", "path": "/api/v1/visitors", "upstream": "http://127.0.0.1:9000",
     "sandbox_upstream": "http://127.0.0.1:9001"},
    {"name": "capped", "path": "/capped", "upstream": "http://127.0.0.1:9000", "rate_limit_per_minute": 2},
    {"name": "basic_only", "path": "/basic", "upstream": "http://127.0.0.1:9000", "auth": ["basic"]},
    {"name": "public", "path": "/public", "upstream": "http://127.0.0.1:9002", "auth": []},
])


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class Store:
    """Principals by secret hash and by key id; counts lookups; `broken` makes every lookup fail."""

    def __init__(self) -> None:
        self.by_hash: dict[str, Principal] = {}
        self.lookups = 0
        self.broken = False

    def add(self, key_id: str = "key_1", *, plan: str = "starter", environment: str = "live",
            **changes: Any) -> str:
        secret = generate_key("gw", environment)
        fields: dict[str, Any] = dict(
            id=key_id, tenant_id="acme", user_id=None, name="server key", display_prefix=secret[:12],
            last4=secret[-4:], secret_hash=hash_key(secret), scope="read_write", permissions=(), resources={},
            environment=environment, rate_limit_per_minute=None, created_at=at(NOW - 86400), expires_at=None,
            last_used_at=None, revoked_at=None, replaced_by=None,
        )
        fields.update(changes)
        tenant = Tenant("acme", "Acme", plan, False, at(NOW - 86400), at(NOW - 86400))
        self.by_hash[hash_key(secret)] = Principal(ApiKey(**fields), tenant, None)
        return secret

    async def get_principal_by_hash(self, secret_hash: str) -> Principal | None:
        self.lookups += 1
        if self.broken:
            raise StoreError("the store is down")
        return self.by_hash.get(secret_hash)

    async def get_principal_by_key_id(self, key_id: str) -> Principal | None:
        self.lookups += 1
        if self.broken:
            raise StoreError("the store is down")
        return next((p for p in self.by_hash.values() if p.key.id == key_id), None)


class LastUsed:
    def __init__(self) -> None:
        self.touched: list[str] = []

    def touch(self, key_id: str) -> None:
        self.touched.append(key_id)


class Assertions:
    def token(self, identity: Identity, route: str, method: str) -> str:
        return f"{identity.key_id}|{route}|{method}"


class RemoteLimiter:
    """A limiter without `hit_sync` (as Redis is): answered only by awaiting."""

    degraded = False

    def __init__(self) -> None:
        self.memory = MemoryRateLimiter(clock=lambda: NOW)
        self.calls: list[list[tuple[str, int]]] = []

    async def hit(self, checks: Sequence[tuple[str, int]]) -> Decision:
        self.calls.append(list(checks))
        return self.memory.hit_sync(checks)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Rig:
    def __init__(self, *, limiter: Any = "memory", plans: dict[str, int] | None = None, ietf: bool | None = None,
                 tokens: bool = False, assertions: bool = False) -> None:
        self.clock = FakeClock(NOW)
        self.store = Store()
        self.cache: IdentityCache[Identity] = IdentityCache(ttl=5, size=100, negative_ttl=5, negative_size=100,
                                                            clock=self.clock)
        self.limiter = MemoryRateLimiter(clock=self.clock) if limiter == "memory" else limiter
        self.last_used = LastUsed()
        self.guard = AccessGuard(
            store=self.store, cache=self.cache, limiter=self.limiter, last_used=self.last_used,  # type: ignore[arg-type]
            plan_limits={"starter": 100, "pro": 500} if plans is None else plans, key_prefix="gw",
            clock=self.clock, verify_token=self.verify if tokens else None,
            assertions=Assertions() if assertions else None,  # type: ignore[arg-type]
            **({} if ietf is None else {"ietf_headers": ietf}),  # left out: the default
        )
        self.tokens: dict[str, str] = {}

    def verify(self, token: str) -> str:
        if token not in self.tokens:
            raise InvalidCredentials("bad token")
        return self.tokens[token]

    def decide(self, path: str, method: str = "GET", **headers: str) -> tuple[Upstream | Awaitable[Upstream], RequestScope]:
        scope = RequestScope(request_id="r", started=0.0, method=method)
        match = ROUTES.match(method, path)
        return self.guard(head(method, headers), scope, match), scope

    async def admit(self, path: str, method: str = "GET", **headers: str) -> tuple[Upstream, RequestScope]:
        decision, scope = self.decide(path, method, **headers)
        if inspect.isawaitable(decision):
            return await decision, scope
        return decision, scope


async def never_called(request: Request) -> Response:
    raise AssertionError("the guard does not serve requests")


def head(method: str, headers: dict[str, str]) -> Request:
    """A real request head, on a connection never opened: a compiled guard checks the type it is given."""
    conn = ClientConnection(HttpServer(never_called, Limits()))
    return Request(conn, method, "/", "1.1", CIMultiDictProxy(CIMultiDict(headers)), None, EMPTY_BODY, True, "127.0.0.1")


async def refused(rig: Rig, path: str, **headers: str) -> tuple[Exception, RequestScope]:
    """The refusal of a request, and its scope as the records read it."""
    scope = RequestScope(request_id="r", started=0.0, method="GET")
    try:
        decision = rig.guard(head("GET", headers), scope, ROUTES.match("GET", path))
        if inspect.isawaitable(decision):
            await decision
    except Exception as exc:
        return exc, scope
    raise AssertionError("admitted")


def key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


def headers_of(scope: RequestScope) -> dict[str, str]:
    return dict(scope.response_headers)


# -- public routes, and the fast and slow paths ------------------------------------------------


async def test_a_public_route_is_forwarded_without_a_credential_or_a_count() -> None:
    rig = Rig()
    upstream, scope = rig.decide("/public/x")
    assert upstream is ROUTES.match("GET", "/public").route.upstream
    assert scope.response_headers == [] and scope.upstream_headers == [] and scope.auth_method is None
    assert len(rig.limiter) == 0 and rig.last_used.touched == []


async def test_a_miss_awaits_the_store_once_then_the_same_key_is_decided_without_awaiting() -> None:
    rig = Rig()
    secret = rig.store.add()
    decision, scope = rig.decide("/api/v1/visitors", **key(secret))
    assert inspect.isawaitable(decision) and rig.store.lookups == 0  # nothing asked before it is awaited
    assert await decision is ROUTES.match("GET", "/api/v1/visitors").route.upstream
    assert rig.store.lookups == 1 and scope.identity is not None and scope.identity.key_id == "key_1"
    decision, scope = rig.decide("/api/v1/visitors", **key(secret))
    assert isinstance(decision, Upstream)  # the fast path: the upstream itself
    assert rig.store.lookups == 1 and scope.identity is not None and scope.auth_method == "api_key"
    assert headers_of(scope)["X-RateLimit-Remaining"] == "98"  # counted on both paths
    assert rig.last_used.touched == ["key_1", "key_1"]


async def test_with_a_remote_limiter_every_request_takes_the_slow_path_and_is_counted_there() -> None:
    limiter = RemoteLimiter()
    rig = Rig(limiter=limiter)
    secret = rig.store.add()
    await rig.admit("/api/v1/visitors", **key(secret))
    decision, scope = rig.decide("/api/v1/visitors", **key(secret))
    assert inspect.isawaitable(decision)
    await decision
    assert rig.store.lookups == 1  # the identity came from the cache all the same
    assert limiter.calls == [[("k:key_1", 100)]] * 2
    assert headers_of(scope)["X-RateLimit-Remaining"] == "98"


async def test_without_a_limiter_nothing_is_counted_and_no_limit_header_is_sent() -> None:
    rig = Rig(limiter=None)
    secret = rig.store.add()
    for _ in range(2):
        upstream, scope = await rig.admit("/capped", **key(secret))
        assert isinstance(upstream, Upstream) and scope.response_headers == []
    for _ in range(3):  # and the route's own cap of 2 is not applied either
        await rig.admit("/capped", **key(secret))


# -- 1. identify -------------------------------------------------------------------------------


async def test_a_malformed_key_is_refused_without_a_lookup_or_a_hash_in_the_cache() -> None:
    rig = Rig()
    good = rig.store.add()
    wrong_checksum = good[:-1] + ("A" if good[-1] != "A" else "B")
    for secret in ("gw_live_short", good + "x", good[:-1], wrong_checksum):
        with pytest.raises(InvalidCredentials) as refused:
            await rig.admit("/api/v1/visitors", **key(secret))
        assert refused.value.message == "malformed API key"
    with pytest.raises(InvalidCredentials) as refused:  # the right length, not ASCII
        await rig.guard.identify(Credential("bearer", "gw_live_" + "é" * (len(good) - 8)))
    assert refused.value.message == "malformed API key"
    assert rig.store.lookups == 0 and len(rig.cache) == 0 and rig.cache.negative_size == 0


async def test_an_unknown_key_is_invalid_and_remembered_as_unknown() -> None:
    rig = Rig()
    stranger = generate_key("gw", "live")
    for _ in range(3):
        with pytest.raises(InvalidCredentials) as refused:
            await rig.admit("/api/v1/visitors", **key(stranger))
        assert refused.value.message == InvalidCredentials.default_message
    assert rig.store.lookups == 1  # the negative cache answers the repeats


async def test_a_store_that_cannot_answer_is_a_503_never_a_guess(caplog) -> None:
    rig = Rig()
    secret = rig.store.add()
    rig.store.broken = True
    with caplog.at_level(logging.WARNING, logger="gateway.access"), pytest.raises(StoreUnavailable):
        await rig.admit("/api/v1/visitors", **key(secret))
    assert [r.getMessage() for r in caplog.records] == ["key store unavailable"]
    assert caplog.records[0].error == "the store is down"  # type: ignore[attr-defined]
    rig.store.broken = False  # nothing was cached from the failure: the next request asks again
    await rig.admit("/api/v1/visitors", **key(secret))
    assert rig.store.lookups == 2


@pytest.mark.parametrize("cached", [False, True])
async def test_a_revoked_key_is_refused_on_both_paths_and_named_in_the_records(cached) -> None:
    rig = Rig()
    secret = rig.store.add(revoked_at=at(NOW - 1))
    if cached:
        with pytest.raises(RevokedCredentials):
            await rig.admit("/api/v1/visitors", **key(secret))  # fills the cache
    error, scope = await refused(rig, "/api/v1/visitors", **key(secret))
    assert isinstance(error, RevokedCredentials)
    assert scope.identity is not None and scope.identity.key_id == "key_1"  # the call log names the key
    assert rig.last_used.touched == [] and len(rig.limiter) == 0
    error, scope = await refused(rig, "/api/v1/visitors", **key(generate_key("gw", "live")))
    assert isinstance(error, InvalidCredentials) and scope.identity is None  # no key to name


async def test_a_key_expires_exactly_at_its_expiry() -> None:
    rig = Rig()
    secret = rig.store.add(expires_at=at(NOW + 10))
    rig.clock.advance(10 - 1e-3)
    await rig.admit("/api/v1/visitors", **key(secret))  # a millisecond before: valid
    rig.clock.advance(1e-3)
    error, scope = await refused(rig, "/api/v1/visitors", **key(secret))  # at the instant itself: expired
    assert isinstance(error, ExpiredCredentials) and scope.identity is not None and scope.identity.key_id == "key_1"
    rig.cache.clear()  # the same from the store (the slow path)
    error, scope = await refused(rig, "/api/v1/visitors", **key(secret))
    assert isinstance(error, ExpiredCredentials) and scope.identity is not None and scope.identity.key_id == "key_1"
    rig.clock.advance(3600)
    with pytest.raises(ExpiredCredentials):
        await rig.admit("/api/v1/visitors", **key(secret))


async def test_basic_needs_the_key_id_that_belongs_to_the_secret() -> None:
    import base64

    rig = Rig()
    secret = rig.store.add("key_1")
    rig.store.add("key_2")

    def basic(key_id: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()}

    upstream, scope = await rig.admit("/basic", **basic("key_1"))
    assert scope.auth_method == "basic" and ("X-Gateway-Auth-Method", "basic") in scope.upstream_headers
    for other in ("key_2", "key_10", "key_"):  # another key's id, or a prefix of its own: not this key
        with pytest.raises(InvalidCredentials) as refused:
            await rig.admit("/basic", **basic(other))
        assert refused.value.message == InvalidCredentials.default_message
    with pytest.raises(MissingCredentials):  # the route takes Basic only
        await rig.admit("/basic", **key(secret))


async def test_tokens_are_refused_where_no_verifier_is_configured() -> None:
    rig = Rig()
    with pytest.raises(InvalidCredentials) as refused:
        await rig.admit("/api/v1/visitors", Authorization="Bearer eyJa.b.c")
    assert refused.value.message == "tokens are not accepted here"
    assert rig.store.lookups == 0


async def test_a_token_is_resolved_by_its_key_id_and_checked_live() -> None:
    rig = Rig(tokens=True)
    rig.store.add("key_1")
    rig.store.add("key_2", revoked_at=at(NOW - 1))
    rig.tokens = {"eyJ1.x.y": "key_1", "eyJ2.x.y": "key_2", "eyJ3.x.y": "key_gone"}
    upstream, scope = await rig.admit("/api/v1/visitors", Authorization="Bearer eyJ1.x.y")
    assert scope.auth_method == "jwt" and scope.identity is not None and scope.identity.key_id == "key_1"
    assert ("X-Gateway-Auth-Method", "jwt") in scope.upstream_headers
    decision, _ = rig.decide("/api/v1/visitors", Authorization="Bearer eyJ1.x.y")
    assert isinstance(decision, Upstream) and rig.store.lookups == 1  # cached under its key id
    with pytest.raises(RevokedCredentials):
        await rig.admit("/api/v1/visitors", Authorization="Bearer eyJ2.x.y")
    with pytest.raises(InvalidCredentials):
        await rig.admit("/api/v1/visitors", Authorization="Bearer eyJ3.x.y")
    with pytest.raises(InvalidCredentials, match="bad token"):
        await rig.admit("/api/v1/visitors", Authorization="Bearer eyJ4.x.y")


async def test_identify_is_the_token_endpoints_way_in() -> None:
    rig = Rig()
    secret = rig.store.add()
    identity = await rig.guard.identify(Credential("bearer", secret))
    assert identity.key_id == "key_1" and rig.store.lookups == 1
    assert (await rig.guard.identify(Credential("bearer", secret))) is identity and rig.store.lookups == 1
    rig.clock.advance(10)  # past the cache's TTL: the store again
    await rig.guard.identify(Credential("bearer", secret))
    assert rig.store.lookups == 2
    with pytest.raises(InvalidCredentials):
        await rig.guard.identify(Credential("bearer", generate_key("gw", "live")))
    expired = rig.store.add("key_old", expires_at=at(NOW))
    with pytest.raises(ExpiredCredentials):
        await rig.guard.identify(Credential("bearer", expired))


# -- 2. authorize ------------------------------------------------------------------------------


@pytest.mark.parametrize("cached", [False, True])
async def test_authorization_is_applied_on_both_paths_before_counting(cached) -> None:
    rig = Rig()
    secret = rig.store.add(scope="read_only")
    if cached:
        await rig.admit("/api/v1/visitors", **key(secret))
    with pytest.raises(InsufficientScope):
        await rig.admit("/api/v1/visitors", "POST", **key(secret))
    upstream, scope = await rig.admit("/api/v1/visitors", **key(secret))
    assert headers_of(scope)["X-RateLimit-Remaining"] == ("98" if cached else "99")  # the refusal spent nothing


# -- 3. count ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cached", [False, True])
async def test_the_plan_limit_then_a_429_with_its_headers(cached) -> None:
    rig = Rig(plans={"starter": 2})
    secret = rig.store.add()
    if cached:  # the identity cached (no count): the requests below take the fast path
        await rig.guard.identify(Credential("bearer", secret))
    for remaining in ("1", "0"):
        upstream, scope = await rig.admit("/api/v1/visitors", **key(secret))
        assert headers_of(scope)["X-RateLimit-Limit"] == "2" and headers_of(scope)["X-RateLimit-Remaining"] == remaining
        assert headers_of(scope)["X-RateLimit-Reset"] == str(int(NOW) + 60) and not scope.rate_limited
    with pytest.raises(RateLimited):
        await rig.admit("/api/v1/visitors", **key(secret))


async def test_a_refusal_marks_the_scope_and_carries_retry_after() -> None:
    rig = Rig(plans={"starter": 1})
    secret = rig.store.add()
    await rig.admit("/api/v1/visitors", **key(secret))
    scope = RequestScope(request_id="r", started=0.0, method="GET")
    with pytest.raises(RateLimited):
        rig.guard(head("GET", key(secret)), scope, ROUTES.match("GET", "/api/v1/visitors"))
    assert scope.rate_limited
    assert headers_of(scope) == {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset": str(int(NOW) + 60), "Retry-After": "60"}
    assert rig.last_used.touched == ["key_1"]  # a refused request is not a use


async def test_a_route_cap_is_a_bucket_of_its_own_per_key() -> None:
    limiter = RemoteLimiter()
    rig = Rig(limiter=limiter)
    secret = rig.store.add()
    await rig.admit("/capped", **key(secret))
    assert limiter.calls == [[("k:key_1", 100), ("r:key_1:capped", 2)]]
    _, scope = await rig.admit("/capped", **key(secret))
    assert headers_of(scope)["X-RateLimit-Limit"] == "2"  # the stricter bucket is reported
    with pytest.raises(RateLimited):
        await rig.admit("/capped", **key(secret))
    _, scope = await rig.admit("/api/v1/visitors", **key(secret))  # the plan's quota is untouched by the refusal
    assert headers_of(scope)["X-RateLimit-Remaining"] == "97"


async def test_a_route_cap_holds_on_the_fast_path_too() -> None:
    rig = Rig()
    secret = rig.store.add()
    await rig.admit("/capped", **key(secret))  # the slow path, filling the cache
    decision, scope = rig.decide("/capped", **key(secret))
    assert isinstance(decision, Upstream) and headers_of(scope)["X-RateLimit-Remaining"] == "0"
    with pytest.raises(RateLimited):
        rig.decide("/capped", **key(secret))


async def test_a_key_override_beats_the_plan_and_a_plan_missing_from_the_config_gets_the_smallest() -> None:
    rig = Rig(plans={"starter": 100, "pro": 500, "tiny": 7})
    custom = rig.store.add("key_custom", rate_limit_per_minute=3)
    pro = rig.store.add("key_pro", plan="pro")
    gone = rig.store.add("key_gone", plan="retired")
    limits = {}
    for name, secret in (("custom", custom), ("pro", pro), ("gone", gone)):
        _, scope = await rig.admit("/api/v1/visitors", **key(secret))
        limits[name] = headers_of(scope)["X-RateLimit-Limit"]
    assert limits == {"custom": "3", "pro": "500", "gone": "7"}


async def test_with_no_plans_at_all_a_key_gets_sixty_a_minute() -> None:
    rig = Rig(plans={})
    secret = rig.store.add()
    _, scope = await rig.admit("/api/v1/visitors", **key(secret))
    assert headers_of(scope)["X-RateLimit-Limit"] == "60"


async def test_set_plans_with_no_plans_leaves_sixty_a_minute() -> None:
    rig = Rig(plans={"starter": 5})
    rig.guard.set_plans({})
    secret = rig.store.add()
    _, scope = await rig.admit("/api/v1/visitors", **key(secret))
    assert headers_of(scope)["X-RateLimit-Limit"] == "60"


async def test_set_plans_applies_to_identities_loaded_afterwards() -> None:
    rig = Rig(plans={"starter": 100})
    rig.guard.set_plans({"starter": 5, "pro": 50})
    secret = rig.store.add()
    gone = rig.store.add("key_gone", plan="retired")
    _, scope = await rig.admit("/api/v1/visitors", **key(secret))
    assert headers_of(scope)["X-RateLimit-Limit"] == "5"
    _, scope = await rig.admit("/api/v1/visitors", **key(gone))
    assert headers_of(scope)["X-RateLimit-Limit"] == "5"  # the new smallest plan


@pytest.mark.parametrize("ietf", [None, False, True])
async def test_ietf_rate_limit_fields_only_when_asked_for(ietf) -> None:
    rig = Rig(ietf=ietf)
    secret = rig.store.add()
    _, scope = await rig.admit("/api/v1/visitors", **key(secret))
    names = [name for name, _ in scope.response_headers]
    assert names[:3] == ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
    assert ("RateLimit-Policy" in names) is bool(ietf) and ("RateLimit" in names) is bool(ietf)


async def test_count_for_the_token_endpoint_uses_the_key_bucket_only() -> None:
    limiter = RemoteLimiter()
    rig = Rig(limiter=limiter)
    secret = rig.store.add()
    identity = await rig.guard.identify(Credential("bearer", secret))
    scope = RequestScope(request_id="r", started=0.0)
    await rig.guard.count(identity, None, scope)
    assert limiter.calls == [[("k:key_1", 100)]] and headers_of(scope)["X-RateLimit-Remaining"] == "99"
    memory = Rig(plans={"starter": 1})
    secret = memory.store.add()
    identity = await memory.guard.identify(Credential("bearer", secret))
    await memory.guard.count(identity, ROUTES.match("GET", "/capped").route, scope)
    with pytest.raises(RateLimited):
        await memory.guard.count(identity, None, RequestScope(request_id="r", started=0.0))
    await Rig(limiter=None).guard.count(identity, None, scope)  # no limiter: nothing to count


# -- 4. admit ----------------------------------------------------------------------------------


async def test_admitted_requests_carry_the_identity_headers_and_touch_last_used() -> None:
    rig = Rig(assertions=True)
    secret = rig.store.add()
    upstream, scope = await rig.admit("/api/v1/visitors/7", **key(secret))
    assert upstream is ROUTES.match("GET", "/api/v1/visitors").route.upstream
    assert scope.identity is not None
    assert scope.upstream_headers == [*scope.identity.headers, ("X-Gateway-Auth-Method", "api_key"),
                                      ("X-Gateway-Identity", "key_1|visitors|api_key")]
    assert rig.last_used.touched == ["key_1"]


async def test_without_assertions_no_identity_token_is_added() -> None:
    rig = Rig()
    secret = rig.store.add()
    _, scope = await rig.admit("/api/v1/visitors", **key(secret))
    assert [name for name, _ in scope.upstream_headers if name == "X-Gateway-Identity"] == []


async def test_a_test_key_goes_to_the_sandbox_and_a_live_key_to_production() -> None:
    rig = Rig()
    live = rig.store.add("key_live")
    test = rig.store.add("key_test", environment="test")
    route = ROUTES.match("GET", "/api/v1/visitors").route
    assert (await rig.admit("/api/v1/visitors", **key(test)))[0] is route.sandbox_upstream
    assert (await rig.admit("/api/v1/visitors", **key(live)))[0] is route.upstream
    decision, _ = rig.decide("/api/v1/visitors", **key(test))
    assert decision is route.sandbox_upstream  # the fast path too
