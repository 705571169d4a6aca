"""What every SQL backend selects and how a row becomes a model: only the timestamp type differs
(text in SQLite, timestamptz in PostgreSQL), so each backend passes its own converter."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

from gateway.keystore.models import ApiKey, Login, Permission, PortalSession, Principal, SessionView, Tenant, User

TENANT_COLUMNS = "t.id, t.name, t.plan, t.disabled, t.created_at, t.updated_at, t.api_enabled, t.write_enabled"
USER_COLUMNS = "u.id, u.tenant_id, u.name, u.email, u.role, u.disabled, u.created_at, u.updated_at"
KEY_COLUMNS = (
    "k.id, k.tenant_id, k.user_id, k.name, k.display_prefix, k.last4, k.secret_hash, k.scope, "
    "k.permissions, k.resources, k.environment, k.rate_limit_per_minute, k.created_at, "
    "k.expires_at, k.last_used_at, k.revoked_at, k.replaced_by, k.exposed_at, k.exposure, k.canary"
)
TENANT_WIDTH, USER_WIDTH, KEY_WIDTH = 8, 8, 20

When = Callable[[Any], "dt.datetime | None"]


def status_case(now_param: str) -> str:
    """A key's status in SQL, as `ApiKey.status` computes it, for filtering and sorting."""
    return ("CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked' "
            f"WHEN k.expires_at IS NOT NULL AND k.expires_at <= {now_param} THEN 'expired' ELSE 'active' END")


def tenant_row(r: Any, when: When, at: int = 0) -> Tenant:
    return Tenant(r[at], r[at + 1], r[at + 2], bool(r[at + 3]), when(r[at + 4]), when(r[at + 5]),  # type: ignore[arg-type]
                  bool(r[at + 6]), bool(r[at + 7]))


def user_row(r: Any, when: When, at: int = 0) -> User:
    return User(r[at], r[at + 1], r[at + 2], r[at + 3], r[at + 4], bool(r[at + 5]),
                when(r[at + 6]), when(r[at + 7]))  # type: ignore[arg-type]  # both columns are NOT NULL


def key_row(r: Any, when: When) -> ApiKey:
    return ApiKey(
        id=r[0], tenant_id=r[1], user_id=r[2], name=r[3], display_prefix=r[4], last4=r[5],
        secret_hash=r[6], scope=r[7],
        permissions=tuple(Permission(tuple(p["methods"]), p["path"]) for p in json.loads(r[8])),
        resources={k: tuple(v) for k, v in json.loads(r[9]).items()},
        environment=r[10], rate_limit_per_minute=r[11], created_at=when(r[12]),  # type: ignore[arg-type]
        expires_at=when(r[13]), last_used_at=when(r[14]), revoked_at=when(r[15]), replaced_by=r[16],
        exposed_at=when(r[17]), exposure=json.loads(r[18]) if r[18] else None, canary=bool(r[19]),
    )


def principal_row(r: Any, when: When) -> Principal:
    """A key row joined with its tenant (from column KEY_WIDTH) and user (after the tenant's, NULL without)."""
    user = user_row(r, when, KEY_WIDTH + TENANT_WIDTH) if r[KEY_WIDTH + TENANT_WIDTH] is not None else None
    return Principal(key_row(r, when), tenant_row(r, when, KEY_WIDTH), user)


def principals_by_hash(found: Iterable[Any], when: When) -> dict[str, Principal | Exception]:
    """The rows of a batched lookup by key hash (column 6). A row that cannot be read fails its own
    key's callers, not the whole batch's."""
    out: dict[str, Principal | Exception] = {}
    for r in found:
        try:
            out[r[6]] = principal_row(r, when)
        except Exception as exc:
            out[r[6]] = exc
    return out


def key_params(key: ApiKey, when: Callable[[dt.datetime | None], Any]) -> tuple[Any, ...]:
    """The insert parameters of a key, in column order."""
    return (
        key.id, key.tenant_id, key.user_id, key.name, key.display_prefix, key.last4, key.secret_hash,
        key.scope, json.dumps([{"methods": list(p.methods), "path": p.path} for p in key.permissions]),
        json.dumps({k: list(v) for k, v in key.resources.items()}), key.environment,
        key.rate_limit_per_minute, when(key.created_at), when(key.expires_at), when(key.last_used_at),
        when(key.revoked_at), key.replaced_by, when(key.exposed_at),
        json.dumps(dict(key.exposure)) if key.exposure is not None else None, key.canary,
    )


def order_by(sort: str, allowed: frozenset[str], alias: str) -> str:
    """A whitelisted ORDER BY; NULLs last ascending, first descending; id breaks ties.
    (`x IS NULL` sorts false before true in SQLite and PostgreSQL alike.)"""
    field = sort.lstrip("-")
    if field not in allowed:
        raise ValueError(f"cannot sort by {field}")
    direction = "DESC" if sort.startswith("-") else "ASC"
    column = "status" if field == "status" else f"{alias}.{field}"
    return f"ORDER BY {column} IS NULL {direction}, {column} {direction}, {alias}.id {direction}"


# `update_user(keep_owner=True)`'s condition on the row it changes (its values before the change):
# it was not an active owner, or its tenant has another one. The same text in both dialects.
KEEPS_AN_OWNER = ("(NOT (users.role = 'owner' AND NOT users.disabled) OR EXISTS (SELECT 1 FROM users o "
                  "WHERE o.tenant_id = users.tenant_id AND o.id <> users.id AND o.role = 'owner' AND NOT o.disabled))")


def demotes(role: str | None, disabled: bool | None) -> bool:
    """Whether a change of role or disabled can take an owner away from a tenant."""
    return (role is not None and role != "owner") or disabled is True


# An email signs in one person; while invitations of several tenants wait, it names them all: the
# login that signs in (has a password) first, then the earliest invitation.
SIGNS_IN_FIRST = " ORDER BY l.password_hash IS NULL, u.created_at, u.id LIMIT 1"

# The portal's reads: a login (user, tenant, email, password hash) and a session with its person.
LOGIN_SELECT = (f"SELECT {USER_COLUMNS}, {TENANT_COLUMNS}, l.email, l.password_hash FROM user_logins l "
                "JOIN users u ON u.id = l.user_id JOIN tenants t ON t.id = u.tenant_id WHERE ")
SESSION_COLUMNS = "s.id_hash, s.user_id, s.created_at, s.seen_at, s.expires_at, s.client_ip, s.user_agent"
SESSION_SELECT = (f"SELECT {SESSION_COLUMNS}, {USER_COLUMNS}, {TENANT_COLUMNS}, l.email FROM portal_sessions s "
                  "JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id "
                  "JOIN user_logins l ON l.user_id = u.id WHERE s.id_hash = ")


def login_row(r: Any, when: When) -> Login:
    after = USER_WIDTH + TENANT_WIDTH
    return Login(user_row(r, when), tenant_row(r, when, USER_WIDTH), r[after], r[after + 1])


def session_row(r: Any, when: When) -> SessionView:
    session = PortalSession(r[0], r[1], when(r[2]), when(r[3]), when(r[4]), r[5], r[6])  # type: ignore[arg-type]
    user = user_row(r, when, 7)
    return SessionView(session, user, tenant_row(r, when, 7 + USER_WIDTH), r[7 + USER_WIDTH + TENANT_WIDTH])
