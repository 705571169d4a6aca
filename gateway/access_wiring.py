"""The access side of the proxy listener, built from the configuration: the access guard, and
the endpoints the gateway answers itself there (the token exchange and its JWKS, the caller's own
`version` and `me`, the secret-scanning receiver). The app hands them to the pipeline; neither
side imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import __version__
from gateway.access.assertion import IdentityAssertions
from gateway.access.endpoints import TokenEndpoints
from gateway.access.guard import AccessGuard, CanaryReport
from gateway.access.secret_scanning import SecretScanningReceiver
from gateway.access.self_api import SelfEndpoints
from gateway.accounts.actors import Actor
from gateway.accounts.service import Accounts
from gateway.config import Config
from gateway.credentials.scanner_signatures import ScannerKeys
from gateway.credentials.tokens import TokenService
from gateway.exchange import Endpoint, Identity
from gateway.keystore.base import KeyStore
from gateway.keystore.cache import IdentityCache
from gateway.keystore.lastused import LastUsedRecorder
from gateway.ratelimit import RateLimiter
from gateway.serving_settings import plan_limits, portal_keys_page


def access_guard(cfg: Config, *, store: KeyStore, cache: IdentityCache[Identity], limiter: RateLimiter,
                 last_used: LastUsedRecorder, tokens: TokenService, clock: Callable[[], float],
                 on_canary: CanaryReport) -> AccessGuard:
    """The guard every proxied request passes (`ratelimit.enabled: false`: no limiter)."""
    return AccessGuard(
        store=store,
        cache=cache,
        limiter=limiter if cfg.ratelimit.enabled else None,
        last_used=last_used,
        plan_limits=plan_limits(cfg),
        key_prefix=cfg.keys.prefix,
        ietf_headers=cfg.ratelimit.ietf_headers,
        clock=clock,
        verify_token=tokens.verify,
        assertions=IdentityAssertions(tokens, ttl=cfg.tokens.identity_ttl, clock=clock),
        expiring_soon_days=cfg.keys.expiring_soon_days,
        keys_page=portal_keys_page(cfg),
        on_canary=on_canary,
    )


def own_endpoints(cfg: Config, guard: AccessGuard, tokens: TokenService, accounts: Accounts,
                  store: KeyStore) -> dict[str, Endpoint]:
    """The paths the gateway answers itself on the proxy listener, by path."""
    token_endpoints = TokenEndpoints(guard, tokens, ttl=cfg.tokens.ttl, body_timeout=cfg.server.body_timeout)
    endpoints: dict[str, Endpoint] = {
        cfg.tokens.path: token_endpoints.exchange, "/.well-known/jwks.json": token_endpoints.jwks}
    if cfg.secret_scanning.enabled:
        endpoints[cfg.secret_scanning.path] = secret_scanning_receiver(cfg, accounts, store)
    if cfg.self_api.enabled:
        own = SelfEndpoints(guard, gateway_version=__version__, api_version=cfg.self_api.api_version)
        endpoints[cfg.self_api.path + "/version"] = own.version
        endpoints[cfg.self_api.path + "/me"] = own.me
    return endpoints


def secret_scanning_receiver(cfg: Config, accounts: Accounts, store: KeyStore) -> SecretScanningReceiver:
    def expose(key_id: str, url: str | None, reporter: str) -> Any:
        return accounts.mark_exposed(key_id, "secret_scanning", url=url, actor=Actor("system", reporter))

    scanning = cfg.secret_scanning
    keys = ScannerKeys((key.key_identifier, key.key) for key in scanning.public_keys)
    return SecretScanningReceiver(keys, store, expose, key_prefix=cfg.keys.prefix,
                                  max_body=scanning.max_body, body_timeout=cfg.server.body_timeout)
