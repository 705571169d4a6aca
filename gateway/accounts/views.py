"""The contract's JSON for tenants, users, keys and lists, shared by the admin API, the portal and
the CLI's `--json`, so all answer alike."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from gateway.accounts.events import iso
from gateway.accounts.service import Accounts
from gateway.keystore.models import ApiKey, Login, Tenant, User


def listing(data: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    """A page of a list: `{"data": [...], "meta": {"total", "page", "per_page", "total_pages"}}`."""
    return {
        "data": data,
        "meta": {
            "total": total,
            "page": page,
            "per_page": per_page,
            "total_pages": max(1, math.ceil(total / per_page)),
        },
    }


def whole_listing(data: list[Any]) -> dict[str, Any]:
    """Every item as one page (the CLI lists everything; a tenant's users fit on one page)."""
    return listing(data, len(data), 1, max(1, len(data)))


async def tenant_view(accounts: Accounts, tenant: Tenant, *, users: bool = False) -> dict[str, Any]:
    """A tenant with its plan's limit and key count (and its users, for one tenant)."""
    view = dict(plain(tenant))
    view["requests_per_minute"] = accounts.plan_limit(tenant)
    view["active_keys"] = await accounts.store.count_active_keys(tenant.id, accounts.now())
    view["max_keys"] = accounts.cfg.keys.max_per_tenant
    if users:
        view["users"] = await people_views(accounts, tenant.id)
    return view


def person(user: User, login: Login | None, *, signs_in: bool | None = None) -> dict[str, Any]:
    """A user as the admin API shows one, with `status`: invited (no password yet), active, disabled,
    and `signs_in`: whether the person has a portal sign-in (an email, invited or accepted). Callers
    that hold no `Login` but know the answer (the signed-in caller, a link just redeemed) say it."""
    view = dict(plain(user))
    if user.disabled:
        view["status"] = "disabled"
    elif login is not None and login.password_hash is None:
        view["status"] = "invited"
    else:
        view["status"] = "active"
    view["signs_in"] = login is not None if signs_in is None else signs_in
    return view


async def people_views(accounts: Accounts, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's users with their portal status: someone invited who has not accepted is `invited`,
    not `active` (the admin API, the CLI and the portal's member list say the same)."""
    logins = {login.user.id: login for login in await accounts.store.logins_of_tenant(tenant_id)}
    return [person(u, logins.get(u.id)) for u in await accounts.store.list_users(tenant_id)]


def key_view(key: ApiKey, now: dt.datetime, expiring_soon_days: int) -> dict[str, Any]:
    """The contract's JSON for a key: never the secret or its hash."""
    expires_in = None
    soon = False
    if key.expires_at is not None:
        days = (key.expires_at - now).total_seconds() / 86400
        expires_in = math.ceil(days) if days >= 0 else math.floor(days)
        soon = expires_in <= expiring_soon_days
    return {
        "id": key.id,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "user_id": key.user_id,
        "masked": key.display_prefix + "•" * 8,
        "last4": key.last4,
        "scope": key.scope,
        "permissions": [{"methods": list(p.methods), "path": p.path} for p in key.permissions],
        "resources": {k: list(v) for k, v in key.resources.items()},
        "environment": key.environment,
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "expires_at": iso(key.expires_at),
        "expires_in_days": expires_in,
        "expiring_soon": soon,
        "status": key.status(now),
        "revoked_at": iso(key.revoked_at),
        "replaced_by": key.replaced_by,
        "exposed_at": iso(key.exposed_at),
        "exposure": dict(key.exposure) if key.exposure is not None else None,
        "canary": key.canary,
    }


def plain(obj: Any) -> Mapping[str, Any]:
    """A tenant or user as JSON-ready fields."""
    fields = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
    return {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in fields.items()}

