"""The one set of rules for tenants, users and keys, shared by the admin API and the CLI.

Each validator reads a JSON-like mapping, collects every problem as a `details` entry, and
raises one `ValidationError` (422) naming each field, so clients can show errors beside fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import KeysConfig
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
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not value.isprintable():
        problems.add(key, f"must be a string of 1 to {limit} printable characters")
        return None
    return value


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
    environment: str = "live"
    resources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    user_id: str | None = None
    rate_limit_per_minute: int | None = None


KEY_FIELDS = {
    "tenant_id", "name", "scope", "permissions", "validity_days",
    "environment", "resources", "user_id", "rate_limit_per_minute",
}


def _permissions(value: Any, problems: Problems) -> tuple[Permission, ...]:
    if not isinstance(value, list):
        problems.add("permissions", "must be a list of {methods, path}")
        return ()
    out: list[Permission] = []
    for i, item in enumerate(value):
        where = f"permissions[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"methods", "path"}:
            problems.add(where, "must be an object with methods and path")
            continue
        methods = item.get("methods")
        path = item.get("path")
        if (
            not isinstance(methods, list)
            or not methods
            or not all(isinstance(m, str) and m.upper() in METHODS for m in methods)
        ):
            problems.add(f"{where}.methods", "must be a non-empty list of HTTP methods")
            continue
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 1024 or not path.isprintable():
            problems.add(f"{where}.path", "must be a path starting with /, optionally ending in /*")
            continue
        out.append(Permission(methods=tuple(m.upper() for m in methods), path=path))
    return tuple(out)


def _resources(value: Any, problems: Problems) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add("resources", "must be an object mapping a route parameter to a list of values")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in values)
        ):
            problems.add(f"resources.{name}", "must be a non-empty list of strings")
            continue
        out[str(name)] = tuple(values)
    return out


def key_spec(body: Any, keys: KeysConfig) -> KeySpec:
    """A validated key request, or a 422 naming every broken field."""
    body = require_object(body)
    problems = Problems()
    check_unknown(body, KEY_FIELDS, problems)
    tenant_id = text(body, "tenant_id", problems, required=True, limit=64)
    name = body.get("name", _MISSING)
    if name is _MISSING:
        problems.add("name", "is required")
    elif (issue := name_problem(name)) is not None:
        problems.add("name", issue)
    scope = choice(body, "scope", SCOPES, problems, default=None)
    permissions: tuple[Permission, ...] = ()
    if "permissions" in body and body["permissions"] is not None:
        permissions = _permissions(body["permissions"], problems)
    if scope == "custom" and not permissions:
        problems.add("permissions", "a custom scope needs at least one permission")
    elif scope in ("read_only", "read_write") and permissions:
        problems.add("permissions", "only a custom scope takes permissions")
    validity: int | None = keys.default_validity_days
    if "validity_days" in body:
        raw = body["validity_days"]
        if raw is None:
            validity = None
        elif (
            isinstance(raw, bool)
            or not isinstance(raw, int)
            or not keys.min_validity_days <= raw <= keys.max_validity_days
        ):
            problems.add(
                "validity_days",
                f"must be an integer from {keys.min_validity_days} to {keys.max_validity_days}, "
                "or null for a key that never expires",
            )
        else:
            validity = raw
    environment = choice(body, "environment", ENVIRONMENTS, problems, default="live")
    resources = _resources(body.get("resources"), problems)
    user_id = None
    if body.get("user_id") is not None:
        user_id = text(body, "user_id", problems, required=False, limit=64)
    rate = positive_int_or_null(body, "rate_limit_per_minute", problems)
    problems.raise_if_any()
    assert tenant_id is not None and scope is not None and environment is not None
    return KeySpec(
        tenant_id=tenant_id,
        name=str(name),
        scope=scope,
        permissions=permissions,
        validity_days=validity,
        environment=environment,
        resources=resources,
        user_id=user_id,
        rate_limit_per_minute=rate,
    )


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
