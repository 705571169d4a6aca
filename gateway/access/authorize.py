"""May this identity make this request? Tenant gates, the route's stance on test keys, scope,
owner role and resources, per request.

A `test` key is meant for a sandbox: on a route without `sandbox_upstream` it is refused (403
SANDBOX_UNAVAILABLE) unless the route opts in with `test_keys: allow`; decided from the identity
and the compiled route, no lookup.

The owner's role is re-read from the (cached) principal on every request, so a downgrade or a
disabled user takes effect as soon as the cache entry is invalidated, which this process does
at once and other instances within `store.cache_ttl`.
"""

from __future__ import annotations

from gateway.access.identity import SAFE_METHODS
from gateway.errors import (
    ApiAccessDisabled,
    InsufficientScope,
    ResourceForbidden,
    SandboxUnavailable,
    WriteDisabled,
)
from gateway.exchange import Identity
from gateway.routing import Match


def authorize_identity(identity: Identity) -> None:
    """Refuse keys whose tenant or owner is disabled, or whose tenant has no API access,
    whatever they ask for."""
    if identity.blocked:
        if identity.tenant_disabled:
            raise InsufficientScope("the key's tenant is disabled")
        if identity.user_disabled:
            raise InsufficientScope("the key's owner is disabled")
        raise ApiAccessDisabled()


def authorize(identity: Identity, method: str, match: Match) -> None:
    authorize_identity(identity)
    if match.route.test_keys_refused and identity.environment == "test":
        raise SandboxUnavailable()
    if identity.writes_refused and method not in SAFE_METHODS:
        if identity.write_disabled:
            raise WriteDisabled()
        raise InsufficientScope("this key is limited to read-only methods")
    if identity.scope == "custom" and not any(r.allows(method, match.path) for r in identity.rules):
        raise InsufficientScope("the key's permissions do not include this method and path")
    if identity.resources and match.params:
        for name, value in match.params.items():
            allowed = identity.resources.get(name)
            if allowed is not None and value not in allowed:
                raise ResourceForbidden(f"the key may not access this {name}")
