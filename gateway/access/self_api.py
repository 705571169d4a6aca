"""The caller's own endpoints on the proxy listener (contract section 10): `<self_api.path>/version`
and `<self_api.path>/me`, answered with the caller's key or a token of it, on no route.

They take every credential kind and refuse as a route does: a missing, wrong, revoked or expired
credential gets the contract's 401, a disabled tenant or owner, or a tenant without API access,
its 403; scope and environment do not matter (any key may ask who it is). Each request counts
against the key's rate limit, as any API request does at Stripe or Unkey: so `/me` is no free
way to poll, its `remaining` is what is left after it, and over the limit it gets the 429.
Everything the answer says is in the cached identity: no store read unless the cache misses.
"""

from __future__ import annotations

import datetime as dt

from gateway.access.authorize import authorize_identity
from gateway.access.endpoints import json_answer
from gateway.access.guard import AccessGuard
from gateway.credentials.parse import KINDS, extract
from gateway.errors import MethodNotAllowed
from gateway.exchange import Identity, RequestScope
from gateway.http.messages import Request, Response
from gateway.ratelimit import Decision

_ALL_KINDS = frozenset(KINDS)
_READ = ("GET", "HEAD")
_NO_STORE = {"Cache-Control": "no-store"}


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SelfEndpoints:
    def __init__(self, guard: AccessGuard, *, gateway_version: str, api_version: str) -> None:
        self._guard = guard
        self._versions = {"gateway_version": gateway_version, "api_version": api_version}

    async def _caller(self, request: Request, scope: RequestScope) -> tuple[Identity, Decision | None]:
        """The caller's live identity, allowed and counted, or the refusal a route would give."""
        if request.method not in _READ:
            raise MethodNotAllowed(_READ)
        credential = extract(request.headers, _ALL_KINDS)
        scope.auth_method = credential.method
        identity = scope.identity = await self._guard.identify(credential, scope, request)
        authorize_identity(identity)
        return identity, await self._guard.count(identity, None, scope)

    async def version(self, request: Request, scope: RequestScope) -> Response:
        await self._caller(request, scope)
        return json_answer(200, self._versions, scope, **_NO_STORE)

    async def me(self, request: Request, scope: RequestScope) -> Response:
        identity, decision = await self._caller(request, scope)
        expires_at = identity.expires_at
        body = {
            "tenant": {"id": identity.tenant_id, "name": identity.tenant_name, "plan": identity.plan},
            "key": {
                "id": identity.key_id,
                "name": identity.key_name,
                "scope": identity.scope,
                "environment": identity.environment,
                "expires_at": _iso(expires_at),
                # the same instant the Sunset header starts from (and the admin API's flag)
                "expiring_soon": expires_at is not None and self._guard.now() >= identity.sunset_from,
            },
            "limits": {
                "requests_per_minute": identity.limit_per_minute,
                "remaining": decision.remaining if decision is not None else None,
            },
        }
        return json_answer(200, body, scope, **_NO_STORE)
