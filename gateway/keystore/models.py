"""Tenants, users and keys as immutable values; timestamps are timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["owner", "admin", "member", "viewer"]
Scope = Literal["read_only", "read_write", "custom"]
Environment = Literal["live", "test"]
Status = Literal["active", "expired", "revoked"]
TokenPurpose = Literal["invitation", "reset"]


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    plan: str
    disabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    api_enabled: bool = True     # the operator's gates (contract section 9)
    write_enabled: bool = True


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str
    name: str
    email: str | None
    role: Role
    disabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Permission:
    methods: tuple[str, ...]
    path: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant_id: str
    user_id: str | None
    name: str
    display_prefix: str
    last4: str
    secret_hash: str
    scope: Scope
    permissions: tuple[Permission, ...]
    resources: Mapping[str, tuple[str, ...]]
    environment: Environment
    rate_limit_per_minute: int | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    replaced_by: str | None
    exposed_at: dt.datetime | None = None
    exposure: Mapping[str, Any] | None = None  # {"reason", "at", "url"?}: where it leaked, first seen
    canary: bool = False  # planted to be found: any use is a 401 and an alarm

    def status(self, now: dt.datetime) -> Status:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class Principal:
    """Everything authentication needs about a key, fetched in one query."""

    key: ApiKey
    tenant: Tenant
    user: User | None


@dataclass(frozen=True, slots=True)
class Login:
    """A person who can sign in to the portal: a user, the email they sign in with (lower case,
    unique over the store) and the argon2id hash of their password (None until they set one)."""

    user: User
    tenant: Tenant
    email: str
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class PortalToken:
    """A single-use link (invitation or password reset): only the SHA-256 of its secret is kept."""

    token_hash: str
    purpose: TokenPurpose
    user_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PortalSession:
    """A signed-in browser: only the SHA-256 of the session id is kept, never the id itself."""

    id_hash: str
    user_id: str
    created_at: dt.datetime
    seen_at: dt.datetime
    expires_at: dt.datetime     # the absolute limit; the idle one is `seen_at` + the idle timeout
    client_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session with the person and tenant behind it, as read fresh on every portal request."""

    session: PortalSession
    user: User
    tenant: Tenant
    email: str
