"""A key's principal flattened once, at cache fill, into what the hot path reads (an `Identity`,
declared with the request record in `exchange.py`).

Timestamps become floats, permissions become method sets and path prefixes, the plan becomes
a number, and the identity headers for the upstream become a ready tuple, so a cached request
costs a few attribute reads and comparisons.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from urllib.parse import quote

from gateway.exchange import Identity, PathRule
from gateway.keystore.models import Principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ONLY_ROLES = frozenset({"viewer"})


def _rule(methods: tuple[str, ...], path: str) -> PathRule:
    wanted = frozenset(m.upper() for m in methods if m != "*")
    if "*" in methods:
        wanted = frozenset()
    if path.endswith("/*"):
        return PathRule(wanted, path[:-2], True)
    return PathRule(wanted, path, False)


def header_value(text: str) -> str:
    """Header-safe text: printable ASCII as is, anything else percent-encoded (UTF-8)."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))


def sunset_headers(key_id: str, expires_at: float, keys_page: str | None) -> tuple[tuple[str, str], ...]:
    """RFC 8594: when the key stops working, and where its people can replace it."""
    headers = [("Sunset", email.utils.formatdate(expires_at, usegmt=True))]
    if keys_page is not None:
        headers.append(("Link", f'<{keys_page}{quote(key_id, safe="")}>; rel="sunset"'))
    return tuple(headers)


def derive(principal: Principal, plan_limits: Mapping[str, int], fallback_limit: int, *,
           expiring_soon_days: int = 20, keys_page: str | None = None) -> Identity:
    """`keys_page`: the portal's link to one key, less the key's id (no `Link` when None)."""
    key, tenant, user = principal.key, principal.tenant, principal.user
    expires_at = key.expires_at.timestamp() if key.expires_at else None
    sunset_from = math.inf
    sunset: tuple[tuple[str, str], ...] = ()
    if expires_at is not None:
        sunset_from = expires_at - expiring_soon_days * 86400.0
        sunset = sunset_headers(key.id, expires_at, keys_page)
    limit = key.rate_limit_per_minute or plan_limits.get(tenant.plan, fallback_limit)
    read_only = key.scope == "read_only" or (user is not None and user.role in READ_ONLY_ROLES)
    headers = [
        ("X-Gateway-Tenant", header_value(tenant.id)),
        ("X-Gateway-Key-Id", key.id),
        ("X-Gateway-Key-Name", header_value(key.name)),
        ("X-Gateway-Scope", key.scope),
        ("X-Gateway-Environment", key.environment),
    ]
    if user is not None:
        headers.append(("X-Gateway-User", header_value(user.id)))
    return Identity(
        key_id=key.id,
        tenant_id=tenant.id,
        user_id=user.id if user else None,
        key_name=key.name,
        environment=key.environment,
        scope=key.scope,
        rules=tuple(_rule(tuple(p.methods), p.path) for p in key.permissions),
        resources={name: frozenset(values) for name, values in key.resources.items()},
        limit_per_minute=limit,
        expires_at=expires_at,
        revoked=key.revoked_at is not None,
        tenant_disabled=tenant.disabled,
        user_disabled=bool(user and user.disabled),
        api_disabled=not tenant.api_enabled,
        write_disabled=not tenant.write_enabled,
        read_only=read_only,
        blocked=tenant.disabled or bool(user and user.disabled) or not tenant.api_enabled,
        writes_refused=read_only or not tenant.write_enabled,
        bucket="k:" + key.id,
        headers=tuple(headers),
        tenant_name=tenant.name,
        plan=tenant.plan,
        sunset_from=sunset_from,
        sunset=sunset,
        canary=key.canary,
    )
