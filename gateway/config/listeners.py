"""The listeners' sections: the proxy listener (`server`, with its TLS and its limits) and the admin listener."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gateway.config.fields import (
    NETWORK,
    Int,
    List,
    Network,
    Number,
)
from gateway.config.keytypes import SECTION, Flag, Port, Seconds, Text


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Set `cert_file` and `key_file`, or `self_signed: true` (one of the two)."""

    __pydantic_config__ = SECTION
    cert_file: Text | None = None
    """PEM certificate chain."""
    key_file: Text | None = None
    """PEM private key."""
    self_signed: Flag = False
    """Development only: generate a certificate under `data_dir` and reuse it."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The proxy listener (HTTPS only)."""

    __pydantic_config__ = SECTION
    tls: TLSConfig
    """The listener's certificate (required)."""
    host: Text = "127.0.0.1"
    """Listen address."""
    port: Port = 8443
    """HTTPS port."""
    plain_http_port: Port | None = None
    """Optional plain-HTTP port: every request there gets 403 HTTPS_REQUIRED, unless it comes from
    `trusted_proxies` with `X-Forwarded-Proto: https`."""
    trusted_proxies: Annotated[tuple[Annotated[Network, NETWORK], ...], List("must be a list of CIDRs")] = ()
    """CIDRs of TLS-terminating proxies whose `X-Forwarded-Proto` / `X-Forwarded-For` are believed."""
    max_body_bytes: Annotated[int, Int()] = 10485760
    """Larger request bodies get 413 PAYLOAD_TOO_LARGE."""
    workers: Annotated[int, Int(1, 256)] = 1
    """Processes sharing the listening sockets (more than 1 needs `ratelimit.backend: redis`)."""
    grace_period: Seconds = 30.0
    """On SIGTERM, how long in-flight requests may take to finish."""
    keepalive_timeout: Seconds = 75.0
    """Idle client connections are closed after this."""
    header_timeout: Seconds = 10.0
    """A request head must arrive within this (slowloris), else 408 and close."""
    body_timeout: Seconds = 30.0
    """Longest wait for more request body bytes, else 408 REQUEST_TIMEOUT and close."""
    send_timeout: Seconds = 60.0
    """Longest wait for a client to take more response bytes, else the connection is cut."""
    upstream_keepalive: Seconds = 15.0
    """Idle upstream connections are closed after this (keep it below the upstream's own)."""
    upstream_connect_timeout: Seconds = 5.0
    """TCP connect timeout to an upstream."""
    max_header_bytes: Annotated[int, Int(1024, 1 << 20)] = 16384
    """Longest request header field."""
    max_header_total_bytes: Annotated[int, Int(1024, 1 << 24)] = 65536
    """All request header fields together (431 above; at most 128 fields)."""
    max_line_bytes: Annotated[int, Int(1024, 1 << 20)] = 8190
    """Longest request line."""
    watch_config: Flag = False
    """true: the config file (and the upstream TLS files it names) is looked at every
    `watch_interval` and reloaded when it changed and then stayed unchanged for one more look, as
    SIGHUP does: a broken file is logged and the running configuration stays. Each worker watches
    for itself."""
    watch_interval: Annotated[float, Number(0.05, 3600, open_lo=False)] = 2.0
    """Seconds between two looks at the watched files' metadata (one `stat` each, no read); a change
    is applied one to two intervals later."""


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin listener (plain HTTP): admin API, console, `/metrics`, `/healthz`, `/readyz`."""

    __pydantic_config__ = SECTION
    host: Text = "127.0.0.1"
    """Listen address (keep it off the internet)."""
    port: Port = 9090
    """Admin port."""
    token_env: Text = "GATEWAY_ADMIN_TOKEN"
    """Environment variable holding the admin bearer token (at least 24 characters)."""
    allow_weak_token: Flag = False
    """Allow a short or missing token, only on a loopback admin listener."""
