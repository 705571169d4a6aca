"""The one set of rules for tenants, users and keys, shared by the admin API and the CLI.

Tenant, user and key requests are models (`requests.py`, also the admin OpenAPI document), read
here with the configured values their rules need (plans, validity bounds); the helpers below
remain for the portal's sign-in bodies.

Each validator reads a JSON-like mapping, collects every problem as a `details` entry, and
raises one `ValidationError` (422) naming each field, so clients can show errors beside fields.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.accounts.requests import (
    KeyInput,
    TenantInput,
    TenantPatch,
    UserInput,
    UserPatch,
    parse,
)
from gateway.config import Config, KeysConfig
from gateway.errors import ValidationError
from gateway.keystore.models import Permission, Tenant

FORBIDDEN_NAME_CHARS = frozenset('\\/[]"!@#$%^&()={};')
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
ROLES = ("owner", "admin", "member", "viewer")
SCOPES = ("read_only", "read_write", "custom")
ENVIRONMENTS = ("live", "test")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MISSING = object()


class Problems:
    def __init__(self) -> None:
        self.details: list[dict[str, str]] = []

    def add(self, field_name: str, issue: str) -> None:
        self.details.append({"field": field_name, "issue": issue})

    def raise_if_any(self) -> None:
        if self.details:
            raise ValidationError(details=self.details)


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ValidationError(details=[{"field": "", "issue": "must be a JSON object"}])
    return body


def check_unknown(body: Mapping[str, Any], allowed: set[str], problems: Problems) -> None:
    for name in body:
        if name not in allowed:
            problems.add(str(name), "unknown field")


def name_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not 1 <= len(value) <= 256:
        return "must be 1 to 256 characters"
    if any(c in FORBIDDEN_NAME_CHARS for c in value):
        return 'must not contain any of \\ / [ ] " ! @ # $ % ^ & ( ) = { } ;'
    if not value.isprintable():
        return "must not contain control characters"
    return None


def text(body: Mapping[str, Any], key: str, problems: Problems, *, required: bool, limit: int = 256) -> str | None:
    value = body.get(key, _MISSING)
    if value is _MISSING:
        if required:
            problems.add(key, "is required")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not value.isprintable() or not value.strip(" "):
        problems.add(key, f"must be a string of 1 to {limit} printable characters, not only spaces")
        return None
    return value.strip(" ")  # stored trimmed, as the request models store names


def choice(body: Mapping[str, Any], key: str, options: tuple[str, ...], problems: Problems, default: str | None) -> str | None:
    value = body.get(key, _MISSING)
    if value is _MISSING:
        if default is None:
            problems.add(key, "is required")
        return default
    if value not in options:
        problems.add(key, "must be one of " + ", ".join(options))
        return None
    return str(value)


def flag(body: Mapping[str, Any], key: str, problems: Problems) -> bool | None:
    value = body.get(key, _MISSING)
    if value is _MISSING:
        return None
    if not isinstance(value, bool):
        problems.add(key, "must be true or false")
        return None
    return value


def positive_int_or_null(body: Mapping[str, Any], key: str, problems: Problems) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
        problems.add(key, "must be a positive integer or null")
        return None
    return value


@dataclass(frozen=True, slots=True)
class KeySpec:
    tenant_id: str
    name: str
    scope: str
    permissions: tuple[Permission, ...] = ()
    validity_days: int | None = 90
    expires_at: dt.datetime | None = None   # an explicit end instead of validity_days
    environment: str = "live"
    resources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    user_id: str | None = None
    rate_limit_per_minute: int | None = None
    canary: bool = False


def tenant_input(body: Any, cfg: Config) -> TenantInput:
    return parse(TenantInput, body, plans=tuple(cfg.plans))


def tenant_patch(body: Any, cfg: Config) -> TenantPatch:
    return parse(TenantPatch, body, plans=tuple(cfg.plans))


def user_input(body: Any) -> UserInput:
    return parse(UserInput, body)


def user_patch(body: Any) -> UserPatch:
    return parse(UserPatch, body)


def key_spec(body: Any, keys: KeysConfig, now: dt.datetime) -> KeySpec:
    """A validated key request, or a 422 naming every broken field."""
    request = parse(KeyInput, body, validity_days=(keys.min_validity_days, keys.max_validity_days))
    given = request.model_fields_set
    validity = request.validity_days if "validity_days" in given else keys.default_validity_days
    if "expires_at" in given:
        expires_at_problem(request.expires_at, "validity_days" in given, keys, now)
        validity = None
    for name in request.resources or ():  # a route parameter's name: a NUL or a lone surrogate names none
        if not (0 < len(name) <= 256 and name.isprintable()):  # (and PostgreSQL's JSON refuses both: a 503)
            raise ValidationError(details=[{"field": "resources", "issue": "names must be 1 to 256 printable characters"}])
    return KeySpec(
        tenant_id=request.tenant_id,
        name=request.name,
        scope=request.scope,
        permissions=tuple(Permission(methods=tuple(m.upper() for m in p.methods), path=p.path)
                          for p in request.permissions or ()),
        validity_days=validity,
        expires_at=request.expires_at,
        environment=request.environment,
        resources={name: tuple(values) for name, values in (request.resources or {}).items()},
        user_id=request.user_id,
        rate_limit_per_minute=request.rate_limit_per_minute,
        canary=request.canary,
    )


def expires_at_problem(at: dt.datetime | None, with_days: bool, keys: KeysConfig, now: dt.datetime) -> None:
    """An explicit end: alone, in the future, and no further than the longest validity allowed."""
    issue = None
    if with_days:
        issue = "give validity_days or expires_at, not both"
    elif at is None:
        issue = "must be a date-time; for a key that never expires, send validity_days: null"
    elif at <= now:
        issue = "must be in the future"
    elif at > now + dt.timedelta(days=keys.max_validity_days):
        issue = f"must be at most keys.max_validity_days ({keys.max_validity_days}) days from now"
    if issue is not None:
        raise ValidationError(details=[{"field": "expires_at", "issue": issue}])


def writes(scope: str, permissions: tuple[Permission, ...]) -> bool:
    """Whether a key of this scope may make a request that changes something."""
    if scope == "read_only":
        return False
    if scope == "custom":
        return any(m not in SAFE_METHODS for p in permissions for m in p.methods)
    return True


def check_gates(tenant: Tenant, scope: str, permissions: tuple[Permission, ...], *, rotating: bool = False) -> None:
    """A key may be made (or given a new secret) only where the operator lets the tenant have it:
    not for a disabled tenant or one without API access, and no writing key without write access."""
    what = "rotated" if rotating else "created"
    if tenant.disabled:
        raise ValidationError(f"tenant {tenant.id} is disabled: no key can be {what}",
                              details=[{"field": "tenant_id", "issue": "the tenant is disabled"}])
    if not tenant.api_enabled:
        raise ValidationError(f"API access is not enabled for tenant {tenant.id}: no key can be {what}",
                              details=[{"field": "tenant_id", "issue": "API access is not enabled for this tenant"}])
    if not tenant.write_enabled and writes(scope, permissions):
        raise ValidationError(
            f"write access is not enabled for tenant {tenant.id}: only read-only keys can be {what}",
            details=[{"field": "scope", "issue": "write access is not enabled for this tenant: "
                                                 "use read_only, or custom with GET, HEAD and OPTIONS only"}])
