"""The configuration, declared once: the whole file, assembled from its sections.

Each section is declared in the module of its concern (`listeners.py`, `accounts.py`, `limits.py`,
`observability.py`, `webhooks.py`, `scanning.py`, `portal.py`, `routes.py`) with its keys, types,
bounds, defaults and help text. Everything else is derived from these classes: the parser's checks
(`parse.py`, through the rules in `fields.py`), the reference `docs/configuration.md`
(`python -m gateway.config.docs`) and the defaults the gateway runs with. They are frozen, slotted
dataclasses, so the request path reads plain attributes. The docstring under a key is its help text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from pydantic.json_schema import SkipJsonSchema

from gateway.config.accounts import KeysConfig, SelfApiConfig, StoreConfig, TenantsConfig, TokensConfig
from gateway.config.fields import List, Table
from gateway.config.keytypes import SECTION, Text
from gateway.config.limits import DEFAULT_PLANS, PlanConfig, RateLimitConfig
from gateway.config.listeners import AdminConfig, ServerConfig
from gateway.config.observability import CallLogConfig, LoggingConfig, MetricsConfig, UsageConfig
from gateway.config.portal import PortalConfig
from gateway.config.routes import RouteConfig
from gateway.config.scanning import SecretScanningConfig
from gateway.config.webhooks import WebhooksConfig


@dataclass(frozen=True, slots=True)
class Config:
    """The whole file. Durations are seconds. Relative paths are relative to the directory the
    gateway starts in. `${NAME}` or `${NAME:-default}` in any string is read from the environment."""

    __pydantic_config__ = SECTION
    server: ServerConfig
    """The proxy listener."""
    data_dir: Text = "./data"
    """Self-signed certificate, token signing keys, SQLite files."""
    admin: AdminConfig = field(default_factory=AdminConfig)
    """The admin listener."""
    store: StoreConfig = field(default_factory=StoreConfig)
    """The key store."""
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    """Rate limits."""
    plans: Annotated[Mapping[str, PlanConfig], Table(
        "must be a non-empty mapping of plan name to {requests_per_minute}")] = field(
        default_factory=lambda: DEFAULT_PLANS)
    """A tenant's plan sets its keys' requests per minute."""
    keys: KeysConfig = field(default_factory=KeysConfig)
    """API keys."""
    tokens: TokensConfig = field(default_factory=TokensConfig)
    """Token exchange."""
    self_api: SelfApiConfig = field(default_factory=SelfApiConfig)
    """The caller's own endpoints (`/gateway/v1/version`, `/gateway/v1/me`)."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    """Logs."""
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """Metrics."""
    call_log: CallLogConfig = field(default_factory=CallLogConfig)
    """The call log."""
    usage: UsageConfig = field(default_factory=UsageConfig)
    """Usage rollups and unusual keys."""
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    """Webhooks: events POSTed, signed, to the endpoints registered at `/admin/webhooks`."""
    secret_scanning: SecretScanningConfig = field(default_factory=SecretScanningConfig)
    """Reports of leaked keys from secret scanners."""
    portal: PortalConfig = field(default_factory=PortalConfig)
    """The tenant portal (self-service for the tenants' own people)."""
    tenants: TenantsConfig = field(default_factory=TenantsConfig)
    """Tenants' gates."""
    routes: Annotated[tuple[RouteConfig, ...], List("must be a list of routes")] = ()
    """The routes, matched by longest path prefix."""
    source: SkipJsonSchema[str | None] = None
    """The file this was read from (set by the loader, not a key of the file)."""
