"""Tenants, their API keys and tokens, and where they are stored: the `store`, `tenants`, `keys`,
`tokens` and `self_api` sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from gateway.config.fields import (
    REDIS_URL,
    STORE_URL,
    TEXT,
    Int,
    Number,
    OneOf,
    Pattern,
    Rule,
)
from gateway.config.keytypes import SECTION, Count, Flag, Seconds, Text
from gateway.credentials.keyformat import PREFIX_PATTERN


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where tenants, users and keys live."""

    __pydantic_config__ = SECTION
    url: Annotated[str, STORE_URL] = "sqlite:///./data/gateway.db"
    """`sqlite:///PATH` or `postgresql://user@host/db` (for several instances). When absent:
    `gateway.db` under `data_dir`."""
    cache_ttl: Seconds = 5.0
    """Longest time a key changed on ANOTHER instance may still pass here."""
    cache_size: Count = 100000
    """Cached identities (LRU)."""
    negative_cache_ttl: Seconds = 2.0
    """How long an unknown key is remembered as unknown."""
    negative_cache_size: Count = 10000
    """Remembered unknown keys."""
    last_used_flush_interval: Seconds = 5.0
    """Last-used times are written in batches this often."""
    busy_timeout: Annotated[float, Number(0, 600, open_lo=False)] = 5.0
    """SQLite: how long a write waits on another process's lock before failing."""
    invalidation_redis_url: Annotated[str, REDIS_URL] | None = None
    """Redis for pushing key, tenant and user changes to other instances; null: `ratelimit.redis_url`
    when `ratelimit.backend` is redis, else none."""
    invalidation_channel: Text = "gw:invalidate"
    """Redis channel of those changes."""

    @property
    def sqlite_path(self) -> str | None:
        return self.url[len("sqlite:///"):] if self.url.startswith("sqlite:///") else None


@dataclass(frozen=True, slots=True)
class TenantsConfig:
    """What a new tenant starts with."""

    __pydantic_config__ = SECTION
    api_enabled_default: Flag = True
    """A new tenant's keys work (`api_enabled`) unless the operator says otherwise."""
    write_enabled_default: Flag = True
    """A new tenant's keys may write (`write_enabled`) unless the operator says otherwise."""


@dataclass(frozen=True, slots=True)
class KeysConfig:
    """API keys: their format and the rules for creating them."""

    __pydantic_config__ = SECTION
    prefix: Annotated[str, Pattern(PREFIX_PATTERN, "must be 1-16 lowercase letters or digits")] = "gw"
    """Keys look like `<prefix>_live_<random><checksum>` or `<prefix>_test_...`."""
    max_per_tenant: Annotated[int, Int(1, 100000)] = 4
    """Active keys per tenant."""
    default_validity_days: Annotated[int, Int(1, 36500)] = 90
    """Validity of a key created without `validity_days` (between the min and the max)."""
    min_validity_days: Annotated[int, Int(1, 36500)] = 10
    """Shortest `validity_days` a key can be created with."""
    max_validity_days: Annotated[int, Int(1, 36500)] = 365
    """Longest `validity_days` a key can be created with (null asks for no expiry)."""
    expiring_soon_days: Annotated[int, Int(0, 36500)] = 20
    """Keys expiring sooner are flagged in the admin API, console and portal, and every answer to a
    request made with one carries `Sunset: <its expiry>` (RFC 8594)."""
    on_exposure: Annotated[Literal["revoke", "flag"], OneOf("revoke", "flag")] = "revoke"
    """A key seen leaked (in a query string, over plain HTTP, in a secret scanner's report):
    `revoke` it at once, or only `flag` it as exposed (either way: `exposed_at`, the audit entry
    and the `key.exposed` event)."""


@dataclass(frozen=True, slots=True)
class TokensConfig:
    """The API key to JWT exchange, and the identity assertion sent upstream."""

    __pydantic_config__ = SECTION
    path: Annotated[str, Pattern(r"/[^?#\s]*", "must be a path starting with /")] = "/api/v1/auth/token"
    """The exchange endpoint on the proxy listener (no route may have this path)."""
    ttl: Annotated[int, Int(1, 86400 * 30)] = 3600
    """Token lifetime in seconds."""
    issuer: Text = "gateway"
    """`iss` claim."""
    audience: Text = "gateway"
    """`aud` claim of exchanged tokens (no route may have this name)."""
    algorithm: Annotated[Literal["EdDSA", "RS256", "ES256"], OneOf("EdDSA", "RS256", "ES256")] = "EdDSA"
    """Signing algorithm."""
    leeway: Annotated[float, Number(0, 300, open_lo=False)] = 5.0
    """Clock skew allowed on `exp` / `nbf`."""
    signing_keys: Annotated[tuple[Annotated[str, TEXT], ...], Rule("must be a list of PEM file paths")] = ()
    """PEM private keys (the first signs, all verify); empty: one is generated under `data_dir`."""
    identity_ttl: Annotated[int, Int(1, 60)] = 60
    """Lifetime of the `X-Gateway-Identity` assertion sent upstream."""


@dataclass(frozen=True, slots=True)
class SelfApiConfig:
    """The caller's own endpoints on the proxy listener: `<path>/version` and `<path>/me`,
    answered with the caller's key or token (no route may be at or below `path`)."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: neither endpoint is served, and routes may use `path`."""
    path: Annotated[str, Pattern(r"(/[A-Za-z0-9._~-]+)+", "must be a path of one or more segments "
                                 "(letters, digits, '.', '_', '~', '-'), without a trailing /")] = "/gateway/v1"
    """Where the two endpoints are."""
    api_version: Annotated[str, Pattern(r"[A-Za-z0-9._-]{1,64}", "must be 1-64 letters, digits, '.', '_' or '-'")] = "1"
    """The version of your API that `<path>/version` announces as `api_version`."""
