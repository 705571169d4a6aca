"""The `routes`: a path prefix each, where its requests go, the credentials it takes and the
upstream TLS it checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from gateway.config.fields import (
    HTTP_URL,
    ROUTE_PATH,
    Int,
    Number,
    OneOf,
    Pattern,
    Rule,
    unique,
    unique_upper,
)
from gateway.config.keytypes import SECTION, Flag, Text
from gateway.credentials.parse import KINDS, Kind

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
AuthKind = Kind           # the credential kinds, declared once with their parser
AUTH_KINDS = KINDS


RouteName = Annotated[str, Pattern("[A-Za-z0-9_.-]{1,64}", "must be 1-64 letters, digits, '_', '.' or '-'")]


@dataclass(frozen=True, slots=True)
class UpstreamTLSConfig:
    """How the gateway checks an `https://` upstream and proves itself to it. The certificate is
    always verified (against `ca_file`, or the system's CAs): an upstream that fails gets 502
    UPSTREAM_UNAVAILABLE, never an unverified connection. The files are read when the config is
    loaded or reloaded (a file that cannot be used refuses the config); routes naming the same files
    share one TLS context."""

    __pydantic_config__ = SECTION
    ca_file: Text | None = None
    """PEM CA certificates the upstream's certificate must chain to, instead of the system's (a
    private CA)."""
    cert_file: Text | None = None
    """PEM client certificate (chain) shown to an upstream that asks for one (mutual TLS); it may
    hold the key too."""
    key_file: Text | None = None
    """PEM private key of `cert_file` (unencrypted), when not in `cert_file`."""
    server_name: Annotated[str, Pattern(r"[A-Za-z0-9_.:-]{1,253}", "must be a host name or IP address")] | None = None
    """The name sent by SNI and checked against the certificate, instead of the upstream URL's host
    (an upstream addressed by IP whose certificate names a host). The `Host` header stays the URL's."""

    @property
    def files(self) -> tuple[str | None, str | None, str | None]:
        """What the TLS context is made of: routes naming the same files share one."""
        return (self.ca_file, self.cert_file, self.key_file)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A path prefix and where its requests go."""

    __pydantic_config__ = SECTION
    name: RouteName
    """Unique name (the audience of the identity assertion sent upstream)."""
    path: Annotated[str, ROUTE_PATH]
    """Matches this path and everything below it, by whole segments; a `{name}` segment matches
    one segment and can be checked against a key's resources."""
    upstream: Annotated[str, HTTP_URL]
    """Where requests go (`http://` or `https://`, an optional base path, no query)."""
    methods: Annotated[tuple[str, ...], Rule(
        "must be a non-empty list of HTTP methods", {"min_length": 1}, check=unique_upper,
        placeholder=ALL_METHODS)] = ALL_METHODS
    """Methods served; others get 405."""
    sandbox_upstream: Annotated[str, HTTP_URL] | None = None
    """Optional: requests made with test keys go here."""
    upstream_tls: UpstreamTLSConfig | None = None
    """An `https://` upstream's CA, client certificate and server name (default: the system's CAs,
    no client certificate, the URL's host)."""
    sandbox_upstream_tls: UpstreamTLSConfig | None = None
    """The same for an `https://` `sandbox_upstream`."""
    strip_prefix: Flag = False
    """true: `/api/v1/visitors/42` reaches the upstream as `/42`."""
    auth: Annotated[tuple[AuthKind, ...], Rule(
        "must be a list of " + ", ".join(AUTH_KINDS) + " ([] for a public route)", check=unique,
        placeholder=AUTH_KINDS)] = AUTH_KINDS
    """Credentials accepted: any of bearer, api_key_header, basic; [] makes the route public."""
    timeout: Annotated[float, Number(0, 3600)] = 30.0
    """Seconds to the upstream's response head (the request sent, its answer begun); 504
    UPSTREAM_TIMEOUT past it."""
    idle_timeout: Annotated[float, Number(0, 3600)] = 60.0
    """Seconds the upstream may pause between body chunks once its answer streams: a long download
    that keeps flowing is delivered whole, one that stalls is cut (the client sees the connection
    close before the body's end)."""
    rate_limit_per_minute: Annotated[int, Int(1, 10_000_000)] | None = None
    """Optional per-key cap on this route, on top of the plan."""
    test_keys: Annotated[Literal["sandbox", "allow"], OneOf("sandbox", "allow")] = "sandbox"
    """sandbox: keys of the `test` environment go to `sandbox_upstream`, and without one get 403
    SANDBOX_UNAVAILABLE; allow: they may reach `upstream` (marked X-Gateway-Environment: test)."""
