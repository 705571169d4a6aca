"""The configuration, declared once: each section's keys, types, bounds, defaults and help text.

Everything else is derived from these classes: the parser's checks (`parse.py`, through the
rules in `fields.py`), the reference `docs/configuration.md` (`python -m gateway.config.docs`) and
the defaults the gateway runs with. They are frozen, slotted dataclasses, so the request path
reads plain attributes. The docstring under a key is its help text.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from gateway.config.fields import (
    BOOL,
    HTTP_URL,
    NETWORK,
    P256_PEM,
    REDIS_URL,
    ROUTE_PATH,
    STORE_URL,
    TEXT,
    Int,
    List,
    Network,
    Number,
    OneOf,
    Pattern,
    Rule,
    Table,
    unique,
    unique_upper,
)
from gateway.credentials.keyformat import PREFIX_PATTERN
from gateway.credentials.parse import KINDS, Kind

SECTION = ConfigDict(extra="forbid", use_attribute_docstrings=True)

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
AuthKind = Kind           # the credential kinds, declared once with their parser
AUTH_KINDS = KINDS

Flag = Annotated[bool, BOOL]
Text = Annotated[str, TEXT]
Port = Annotated[int, Int(0, 65535)]
Seconds = Annotated[float, Number()]
Count = Annotated[int, Int(1)]


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
class RateLimitConfig:
    """Per-key sliding windows of 60 seconds, at the plan's rate."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no limits are counted or enforced, no `X-RateLimit-*` headers."""
    backend: Annotated[Literal["memory", "redis"], OneOf("memory", "redis")] = "memory"
    """redis is needed for `server.workers` > 1 and for several instances."""
    redis_url: Annotated[str, REDIS_URL] = "redis://127.0.0.1:6379/0"
    """The Redis of the redis backend."""
    on_backend_error: Annotated[Literal["allow", "deny"], OneOf("allow", "deny")] = "allow"
    """What to do while Redis is unreachable."""
    ietf_headers: Flag = False
    """Also send the IETF `RateLimit-Policy` / `RateLimit` fields."""
    redis_prefix: Text = "gw:rl:"
    """Key prefix in Redis."""
    redis_leases: Flag = True
    """redis: a worker leases permits of a busy key and decides its requests locally, still exact
    (README, Rate limits); false: one Redis step per decision."""
    failed_auth_per_minute: Annotated[int, Int(0, 10**9)] = 1200
    """Wrong keys or tokens per client address and minute before its 401s are held (0: never)."""
    failed_auth_delay: Annotated[float, Number(0.0, 60.0)] = 1.0
    """How long each 401 past that budget waits, in seconds."""


@dataclass(frozen=True, slots=True)
class PlanConfig:
    """A plan a tenant can be on."""

    __pydantic_config__ = SECTION
    requests_per_minute: Annotated[int, Int(1, 10_000_000)]
    """The requests per minute of each of the tenant's keys."""


DEFAULT_PLANS = types.MappingProxyType({
    "starter": PlanConfig(100), "professional": PlanConfig(500), "enterprise": PlanConfig(2000),
})


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


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Process logs and the access log (JSON lines on stderr)."""

    __pydantic_config__ = SECTION
    level: Annotated[Literal["debug", "info", "warning", "error"], OneOf("debug", "info", "warning", "error")] = "info"
    """Least severity logged."""
    access_log: Flag = True
    """One JSON line per request."""
    access_log_sample_rate: Annotated[float, Number(0, 1, open_lo=False)] = 1.0
    """Fraction of requests logged."""


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus metrics at `/metrics` on the admin listener."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: request metrics are not counted (cache and buffer figures still are)."""
    per_tenant_label: Flag = False
    """Add a tenant label to request metrics (one series per tenant!)."""


@dataclass(frozen=True, slots=True)
class CallLogConfig:
    """One row per proxied request, readable at `/admin/calls`."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no rows are kept."""
    # Small batches often: a second's rows written at once held the event loop (binding the
    # parameters takes the GIL) long enough to double the open-loop p99 at half load (9-10 ->
    # ~5 ms), for ~2 % more CPU per request at 0.1 s.
    flush_interval: Seconds = 0.2
    """Rows are written in batches this often (small batches: a big one holds the event loop)."""
    buffer_size: Count = 10000
    """Rows kept in memory while the store is slow (overflow is counted)."""
    retention_days: Count = 30
    """Rows older than this are removed."""
    max_rows: Count = 1000000
    """At most this many rows are kept (the oldest go first)."""
    writer: Annotated[Literal["auto", "thread", "process"], OneOf("auto", "thread", "process")] = "auto"
    """Who writes the rows into SQLite: `thread` (in the gateway's process), `process` (a writer
    process per worker, off the event loop's CPU) or `auto` (`process` with at least 4 CPUs to run
    on, else `thread`). PostgreSQL: no effect."""


@dataclass(frozen=True, slots=True)
class UsageAnomaliesConfig:
    """Keys whose last hour is far above their own hourly average over the 24 hours before: the
    key shows it (`anomaly`), and a `key.anomaly` event and audit entry are made, once per key,
    kind and hour however many instances look."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no look for unusual keys."""
    check_interval: Annotated[float, Number(1, 3600, open_lo=False)] = 60.0
    """Seconds between looks (every instance looks; an anomaly is reported once)."""
    traffic_factor: Annotated[float, Number(1, 1e6, open_lo=False)] = 10.0
    """Traffic: the last hour at least this many times the key's hourly average (a key with no
    traffic before has no average and is not judged)..."""
    min_requests: Count = 100
    """...and at least this many requests."""
    error_factor: Annotated[float, Number(1, 1e6, open_lo=False)] = 5.0
    """Errors: 4xx/5xx answers (the gateway's own 429s aside) at least this many times the key's
    hourly average of them, making at least half its requests..."""
    min_errors: Count = 50
    """...and at least this many."""
    mark_hours: Annotated[int, Int(1, 8760)] = 24
    """How long a key shows its latest anomaly."""


@dataclass(frozen=True, slots=True)
class UsageConfig:
    """Usage per key and tenant (requests by status class, rate-limited, latency) rolled up per
    minute, hour and day from the call log's batches: `/admin/usage`, the console's charts."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no rollups are kept (usage answers empty series); the call log is not affected. On
    with the call log off, usage is counted from the same per-request record, no row written."""
    minute_retention_hours: Annotated[int, Int(1, 8760)] = 48
    """Minute rollups older than this are removed."""
    hour_retention_days: Annotated[int, Int(1, 3650)] = 90
    """Hour rollups (and anomaly marks) older than this are removed."""
    day_retention_days: Annotated[int, Int(1, 36500)] = 730
    """Day rollups older than this are removed."""
    anomalies: UsageAnomaliesConfig = field(default_factory=UsageAnomaliesConfig)
    """Unusual keys."""


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Signed webhook deliveries of key, tenant and user events (the README's Webhooks section)."""

    __pydantic_config__ = SECTION
    retry_for: Seconds = 86400
    """A delivery that keeps failing is retried this long (from its event, or from a manual retry),
    then marked failed."""
    timeout: Annotated[float, Number(0, 60)] = 10
    """An attempt's limit, from connecting to the answer's head; a slower receiver is retried."""
    backoff_base: Seconds = 10
    """The wait after a first failed attempt; each later one doubles (drawn from its upper half)."""
    backoff_max: Seconds = 21600
    """The longest wait between two attempts (at least `backoff_base`)."""
    expiring_days: Annotated[tuple[Annotated[int, Int(1, 36500)], ...], List("must be a list of whole days")] = (20, 7, 1)
    """`key.expiring` is sent once as a key comes within each of these numbers of days of its expiry."""
    allowed_networks: Annotated[tuple[Annotated[Network, NETWORK], ...], List("must be a list of CIDRs")] = ()
    """Networks a webhook may reach although they are loopback, private, link-local or otherwise not
    public (refused by default, at creation and at every delivery)."""
    allow_http: Flag = False
    """true: `http://` URLs too (a receiver on the same host, tests); otherwise `https://` only."""
    disable_after: Annotated[float, Number(0, 1e9, open_lo=False)] = 432000
    """An endpoint whose attempts have all failed for this long is disabled, with an audit entry (0: never)."""
    retention_days: Count = 30
    """Delivered and failed events, with their delivery log, are kept this long."""
    concurrency: Annotated[int, Int(1, 1000)] = 16
    """Attempts in flight at once, per gateway process; one tenant's endpoints take at most a quarter
    of them (endpoints for every tenant's events are not capped)."""
    poll_interval: Annotated[float, Number(0, 60)] = 2
    """The longest wait before looking for due deliveries (changes made by this process start them at
    once; other instances' within this)."""
    max_per_tenant: Annotated[int, Int(1, 100000)] = 20
    """Endpoints a tenant may have (the admin API's and the portal's together; every-tenant endpoints
    aside): each takes a delivery of every event it subscribes to, from the attempts all tenants
    share, so one tenant's thousands of endpoints would hold back everyone's deliveries."""


@dataclass(frozen=True, slots=True)
class ScannerKeyConfig:
    """A secret scanner's public key, as GitHub publishes them at
    `https://api.github.com/meta/public_keys/secret_scanning`."""

    __pydantic_config__ = SECTION
    key_identifier: Annotated[str, Pattern("[!-~]{1,256}", "must be 1-256 printable ASCII characters, no spaces")]
    """What the scanner names this key in `Github-Public-Key-Identifier`."""
    key: Annotated[str, P256_PEM]
    """The public key, PEM text (a YAML block: `key: |`)."""


@dataclass(frozen=True, slots=True)
class SecretScanningConfig:
    """Leaked keys reported by secret scanners: GitHub's partner program format, signed reports
    only (the README's Leaked keys section)."""

    __pydantic_config__ = SECTION
    enabled: Flag = False
    """true: reports are taken at `path` on the proxy listener (at least one of `public_keys` needed)."""
    path: Annotated[str, Pattern(r"(/[A-Za-z0-9._~-]+)+", "must be a path of one or more segments "
                                 "(letters, digits, '.', '_', '~', '-'), without a trailing /")] = "/gateway/v1/secret-scanning"
    """Where the reports are POSTed (no route may be at or below it)."""
    public_keys: Annotated[tuple[ScannerKeyConfig, ...], List("must be a list of {key_identifier, key}")] = ()
    """The keys a report may be signed with, each `{key_identifier, key}`: the name the scanner
    gives it in `Github-Public-Key-Identifier`, and the public key's PEM text (ECDSA P-256). A
    report signed with any other key, or unsigned, is refused (401)."""
    max_body: Annotated[int, Int(1024, 64 * 1024 * 1024)] = 1024 * 1024
    """Largest report accepted, in bytes (413 above)."""


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


PORTAL_PATH = Pattern(r"(/[A-Za-z0-9._~-]+)+", "must be a path of one or more literal segments, like /portal")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where invitation and password-reset mails go out (unset: links are only shown once to whoever made them)."""

    __pydantic_config__ = SECTION
    host: Text
    """The SMTP server."""
    sender: Text
    """The From address (`API portal <portal@example.com>`)."""
    port: Port = 587
    """Its port."""
    starttls: Flag = True
    """Upgrade to TLS with STARTTLS before sending (verified against the system's CAs or `ca_file`)."""
    username_env: Text | None = None
    """The environment variable holding the SMTP user name (credentials never go in this file)."""
    password_env: Text | None = None
    """The environment variable holding the SMTP password."""
    ca_file: Text | None = None
    """CA bundle for the server's certificate, else the system's."""
    timeout: Annotated[float, Number(0, 300)] = 10.0
    """Seconds for one SMTP conversation."""


@dataclass(frozen=True, slots=True)
class PortalConfig:
    """The tenant portal: the tenants' own people sign in on the proxy listener under `path`."""

    __pydantic_config__ = SECTION
    enabled: Flag = False
    """true: serve the portal page and its API on the proxy listener (HTTPS) under `path`."""
    path: Annotated[str, PORTAL_PATH] = "/portal"
    """Where it is served; this path and everything below it are the portal's (a route there is refused)."""
    public_url: Annotated[str, HTTP_URL] | None = None
    """The portal's address as people reach it (`https://api.example.com`): the origin state-changing
    requests must come from, and the base of invitation and reset links. Unset: the Origin check takes
    the host each request names; links never do (they use the proxy listener's `server.host` and `port`)."""
    session_idle: Annotated[float, Number(60, 86400 * 30)] = 1800
    """A session ends this long after its last use."""
    session_max: Annotated[float, Number(60, 86400 * 365)] = 43200
    """A session ends this long after sign-in, however much it is used."""
    smtp: SmtpConfig | None = None
    """Optional: invitations and password-reset links also go out by mail."""


@dataclass(frozen=True, slots=True)
class TenantsConfig:
    """What a new tenant starts with."""

    __pydantic_config__ = SECTION
    api_enabled_default: Flag = True
    """A new tenant's keys work (`api_enabled`) unless the operator says otherwise."""
    write_enabled_default: Flag = True
    """A new tenant's keys may write (`write_enabled`) unless the operator says otherwise."""


RouteName = Annotated[str, Pattern("[A-Za-z0-9_.-]{1,64}", "must be 1-64 letters, digits, '_', '.' or '-'")]


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
