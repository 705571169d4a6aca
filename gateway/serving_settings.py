"""What a serving process's parts take from the configuration, in the shapes they take it: the
proxy listener's TLS context, the HTTP engine's limits, the plans' requests per minute, and the
portal's page of a key (the `Link` of a `Sunset` answer). Read at start and again on a reload.
"""

from __future__ import annotations

import ssl

from gateway.config import Config, ServerConfig
from gateway.http.connection import Limits
from gateway.tls import ensure_self_signed, server_context


def tls_context(cfg: Config) -> ssl.SSLContext:
    tls = cfg.server.tls
    if tls.self_signed:
        cert, key = ensure_self_signed(cfg.data_dir)
        return server_context(cert, key)
    assert tls.cert_file and tls.key_file  # guaranteed by config validation
    return server_context(tls.cert_file, tls.key_file)


def engine_limits(server: ServerConfig) -> Limits:
    """The HTTP engine's limits for the proxy listener, from the `server` section."""
    return Limits(
        header_timeout=server.header_timeout,
        keepalive_timeout=server.keepalive_timeout,
        linger_timeout=server.body_timeout,
        send_timeout=server.send_timeout,
        max_line_bytes=server.max_line_bytes,
        max_field_bytes=server.max_header_bytes,
        max_header_total_bytes=server.max_header_total_bytes,
    )


def plan_limits(cfg: Config) -> dict[str, int]:
    return {name: plan.requests_per_minute for name, plan in cfg.plans.items()}


def portal_keys_page(cfg: Config) -> str | None:
    """The portal's page of one key, less its id: the `Link` of a `Sunset` answer (contract
    section 10); None unless the portal is on with a `public_url` (the base of its links, as
    for invitations)."""
    portal = cfg.portal
    if not portal.enabled or not portal.public_url:
        return None
    return f"{portal.public_url.rstrip('/')}{portal.path.rstrip('/')}/#/keys?key="
