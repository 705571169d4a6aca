"""YAML into the configuration dataclasses of `gateway/config.py`, validated whole: every problem at once.

Each problem names its zero-based field path (`routes[1].upstream: must be an http(s) URL`), so
an operator fixes a file in one pass. Unknown keys are errors, `bool` is never an integer, and
`${NAME}` / `${NAME:-default}` in any string is read from the environment (a value that is one
reference alone is read as a number or boolean where the field wants one).
"""

from __future__ import annotations

import ipaddress
import os
import re
import types
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.config import (
    ALL_METHODS,
    AUTH_KINDS,
    AdminConfig,
    CallLogConfig,
    Config,
    ConfigError,
    KeysConfig,
    LoggingConfig,
    MetricsConfig,
    Network,
    PlanConfig,
    RateLimitConfig,
    RouteConfig,
    ServerConfig,
    StoreConfig,
    TLSConfig,
    TokensConfig,
)

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ROUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD = re.compile(r"[A-Z]{1,20}")


_MISSING = object()


class Reader:
    """Reads one mapping at a field path, recording problems instead of raising."""

    def __init__(self, node: Any, path: str, problems: list[str], allowed: set[str]) -> None:
        self.path = path
        self.problems = problems
        if node is None:
            node = {}
        if not isinstance(node, Mapping):
            self.problem("", "must be a mapping")
            node = {}
        self.node: Mapping[str, Any] = node
        for key in node:
            if key not in allowed:
                self.problem(str(key), "unknown key")

    def where(self, key: str) -> str:
        if not key:
            return self.path or "(top level)"
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where(key)}: {message}")

    def get(self, key: str, default: Any, check: Callable[[Any], bool], message: str,
            convert: Callable[[Any], Any] | None = None) -> Any:
        value = self.node.get(key, _MISSING)
        if value is _MISSING:
            return default
        if convert is not None:
            value = convert(value)
        if not check(value):
            self.problem(key, message)
            return default
        return value

    def integer(self, key: str, default: Any, lo: int = 0, hi: int = 2**62) -> Any:
        ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi  # noqa: E731
        return self.get(key, default, ok, f"must be an integer between {lo} and {hi}", _as_int)

    def number(self, key: str, default: float, lo: float = 0.0, hi: float = 1e9, open_lo: bool = True) -> float:
        def ok(v: Any) -> bool:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return False
            return (v > lo if open_lo else v >= lo) and v <= hi
        bound = ">" if open_lo else ">="
        return float(self.get(key, default, ok, f"must be a number {bound} {lo:g} and <= {hi:g}", _as_number))

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self.get(key, default, lambda v: isinstance(v, bool), "must be true or false", _as_bool))

    def string(self, key: str, default: Any, pattern: re.Pattern[str] | None = None, message: str = "") -> Any:
        ok = lambda v: isinstance(v, str) and bool(v) and (pattern is None or pattern.fullmatch(v) is not None)  # noqa: E731
        return self.get(key, default, ok, message or "must be a non-empty string")

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        return str(self.get(key, default, lambda v: v in options, "must be one of " + ", ".join(options)))

    def required(self, key: str) -> bool:
        if key not in self.node:
            self.problem(key, "is required")
            return False
        return True


class _FromEnv(str):
    """A value that was one `${NAME}` alone: a number or boolean field reads it as one."""


_INT = re.compile(r"[+-]?\d{1,18}")
_FLOAT = re.compile(r"[+-]?(\d{1,18}(\.\d{0,18})?|\.\d{1,18})")


def _as_int(v: Any) -> Any:
    return int(v) if isinstance(v, _FromEnv) and _INT.fullmatch(v) else v


def _as_number(v: Any) -> Any:
    return float(v) if isinstance(v, _FromEnv) and _FLOAT.fullmatch(v) else v


def _as_bool(v: Any) -> Any:
    return {"true": True, "false": False}.get(v.lower(), v) if isinstance(v, _FromEnv) else v


def _expand(node: Any, path: str, env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(node, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{path or '(top level)'}: environment variable {name} is not set")
            return m.group(0)  # keep the text so the one problem is not followed by a derived one
        expanded = _ENV.sub(sub, node)
        if expanded != node and _ENV.fullmatch(node):
            return _FromEnv(expanded)  # `port: ${PORT}`: a number where the field wants one
        return expanded
    if isinstance(node, Mapping):
        return {k: _expand(v, f"{path}.{k}" if path else str(k), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    return node


def _fields(cls: type) -> set[str]:
    return {f for f in cls.__dataclass_fields__ if f != "source"}  # type: ignore[attr-defined]


def _http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
        and not parts.fragment and "@" not in parts.netloc and "?" not in value and "#" not in value
    )


def _tls(node: Any, problems: list[str]) -> TLSConfig:
    r = Reader(node, "server.tls", problems, _fields(TLSConfig))
    tls = TLSConfig(
        cert_file=r.string("cert_file", None), key_file=r.string("key_file", None),
        self_signed=r.boolean("self_signed", False),
    )
    has_files = tls.cert_file is not None and tls.key_file is not None
    if tls.self_signed == has_files or (not has_files and (tls.cert_file or tls.key_file)):
        r.problem("", "set cert_file and key_file, or self_signed: true (one of the two)")
    return tls


def _server(node: Any, problems: list[str]) -> ServerConfig:
    r = Reader(node, "server", problems, _fields(ServerConfig))
    d = ServerConfig()
    if "tls" not in r.node:
        r.problem("tls", "is required (cert_file and key_file, or self_signed: true)")
        tls = TLSConfig(self_signed=True)
    else:
        tls = _tls(r.node["tls"], problems)
    proxies: list[Network] = []
    raw = r.get("trusted_proxies", [], lambda v: isinstance(v, list), "must be a list of CIDRs")
    for i, item in enumerate(raw):
        try:
            proxies.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            problems.append(f"server.trusted_proxies[{i}]: not an IP network")
    return ServerConfig(
        host=r.string("host", d.host), port=r.integer("port", d.port, 0, 65535), tls=tls,
        plain_http_port=r.integer("plain_http_port", None, 0, 65535), trusted_proxies=tuple(proxies),
        max_body_bytes=r.integer("max_body_bytes", d.max_body_bytes), workers=r.integer("workers", 1, 1, 256),
        grace_period=r.number("grace_period", d.grace_period), keepalive_timeout=r.number("keepalive_timeout", d.keepalive_timeout),
        header_timeout=r.number("header_timeout", d.header_timeout),
        body_timeout=r.number("body_timeout", d.body_timeout),
        send_timeout=r.number("send_timeout", d.send_timeout),
        upstream_keepalive=r.number("upstream_keepalive", d.upstream_keepalive),
        upstream_connect_timeout=r.number("upstream_connect_timeout", d.upstream_connect_timeout),
        max_header_bytes=r.integer("max_header_bytes", d.max_header_bytes, 1024, 1 << 20),
        max_header_total_bytes=r.integer("max_header_total_bytes", d.max_header_total_bytes, 1024, 1 << 24),
        max_line_bytes=r.integer("max_line_bytes", d.max_line_bytes, 1024, 1 << 20),
    )


def _plans(node: Any, problems: list[str]) -> Mapping[str, PlanConfig]:
    if node is None:
        return Config().plans
    if not isinstance(node, Mapping) or not node:
        problems.append("plans: must be a non-empty mapping of plan name to {requests_per_minute}")
        return Config().plans
    plans = {}
    for name, body in node.items():
        r = Reader(body, f"plans.{name}", problems, {"requests_per_minute"})
        if r.required("requests_per_minute"):
            plans[str(name)] = PlanConfig(str(name), r.integer("requests_per_minute", 1, 1, 10_000_000))
    return types.MappingProxyType(plans)


def _route(node: Any, i: int, problems: list[str]) -> RouteConfig | None:
    where = f"routes[{i}]"
    r = Reader(node, where, problems, _fields(RouteConfig))
    present = [r.required(k) for k in ("name", "path", "upstream")]
    name = r.string("name", "", _ROUTE_NAME, "must be 1-64 letters, digits, '_', '.' or '-'")
    path = r.string("path", "/", None, "must be a path starting with /")
    if isinstance(path, str) and not _valid_route_path(path):
        r.problem("path", "must start with /, be ASCII without %-escapes, have no empty, '.' or '..' "
                  "segments, no ? or #, and {param} segments with distinct identifier names")
    upstream = r.get("upstream", "", _http_url, "must be an http(s) URL without query or fragment")
    sandbox = r.get("sandbox_upstream", None, _http_url, "must be an http(s) URL without query or fragment")
    methods = r.get("methods", list(ALL_METHODS),
                    lambda v: isinstance(v, list) and bool(v) and all(isinstance(m, str) and _METHOD.fullmatch(m.upper()) for m in v),
                    "must be a non-empty list of HTTP methods")
    auth = r.get("auth", list(AUTH_KINDS),
                 lambda v: isinstance(v, list) and all(a in AUTH_KINDS for a in v),
                 "must be a list of " + ", ".join(AUTH_KINDS) + " ([] for a public route)")
    route = RouteConfig(
        name=name, path=path, upstream=upstream,
        methods=tuple(dict.fromkeys(m.upper() for m in methods)), sandbox_upstream=sandbox,
        strip_prefix=r.boolean("strip_prefix", False), auth=tuple(dict.fromkeys(auth)),
        timeout=r.number("timeout", 30, 0, 3600), rate_limit_per_minute=r.integer("rate_limit_per_minute", None, 1, 10_000_000),
    )
    return route if all(present) else None


def _valid_route_path(path: str) -> bool:
    if not path.startswith("/") or "?" in path or "#" in path or "//" in path:
        return False
    if not path.isascii() or "%" in path:  # requests are matched normalised: `~`, never `%7E`
        return False
    if path == "/":
        return True
    segments = path.strip("/").split("/") if path.endswith("/") else path[1:].split("/")
    names = []
    for segment in segments:
        if segment in ("", ".", "..") or not segment.isprintable() or " " in segment:
            return False
        if "{" in segment or "}" in segment:
            m = _PARAM.fullmatch(segment)
            if m is None:
                return False
            names.append(m.group(1))
    return len(names) == len(set(names))


def _shape(path: str) -> str:
    return "/" + "/".join("{}" if _PARAM.fullmatch(s) else s for s in path.split("/") if s)


def parse_config(data: object, *, env: Mapping[str, str] | None = None, source: str | None = None) -> Config:
    """A validated Config, or ConfigError listing every problem."""
    problems: list[str] = []
    data = _expand(data, "", os.environ if env is None else env, problems)
    top = Reader(data, "", problems, _fields(Config))
    node = top.node
    server = _server(node.get("server"), problems)
    data_dir = top.string("data_dir", "./data")
    a = Reader(node.get("admin"), "admin", problems, _fields(AdminConfig))
    admin = AdminConfig(
        host=a.string("host", "127.0.0.1"), port=a.integer("port", 9090, 0, 65535),
        token_env=a.string("token_env", "GATEWAY_ADMIN_TOKEN"), allow_weak_token=a.boolean("allow_weak_token", False),
    )
    s = Reader(node.get("store"), "store", problems, _fields(StoreConfig))
    store = StoreConfig(
        url=s.get("url", f"sqlite:///{data_dir}/gateway.db",
                  lambda v: isinstance(v, str) and (v.startswith("sqlite:///") and len(v) > 10
                                                    or v.startswith(("postgresql://", "postgres://"))),
                  "must be sqlite:///PATH or postgresql://..."),
        cache_ttl=s.number("cache_ttl", 5), cache_size=s.integer("cache_size", 100000, 1),
        negative_cache_ttl=s.number("negative_cache_ttl", 2), negative_cache_size=s.integer("negative_cache_size", 10000, 1),
        last_used_flush_interval=s.number("last_used_flush_interval", 5),
        busy_timeout=s.number("busy_timeout", 5, 0, 600, open_lo=False),
        invalidation_redis_url=s.get("invalidation_redis_url", None,
                                     lambda v: v is None or isinstance(v, str) and v.startswith(
                                         ("redis://", "rediss://", "unix://")),
                                     "must be a redis:// URL"),
        invalidation_channel=s.string("invalidation_channel", "gw:invalidate"),
    )
    rl = Reader(node.get("ratelimit"), "ratelimit", problems, _fields(RateLimitConfig))
    ratelimit = RateLimitConfig(
        enabled=rl.boolean("enabled", True),
        backend=rl.choice("backend", "memory", ("memory", "redis")),
        redis_url=rl.get("redis_url", "redis://127.0.0.1:6379/0",
                         lambda v: isinstance(v, str) and v.startswith(("redis://", "rediss://", "unix://")),
                         "must be a redis:// URL"),
        on_backend_error=rl.choice("on_backend_error", "allow", ("allow", "deny")),
        ietf_headers=rl.boolean("ietf_headers", False), redis_prefix=rl.string("redis_prefix", "gw:rl:"),
        failed_auth_per_minute=rl.integer("failed_auth_per_minute", 1200, 0, 10**9),
        failed_auth_delay=rl.number("failed_auth_delay", 1.0, 0.0, 60.0),
    )
    if ratelimit.backend == "memory" and server.workers > 1:
        problems.append("ratelimit.backend: the memory backend cannot share limits across workers; "
                        "use redis or workers: 1")
    k = Reader(node.get("keys"), "keys", problems, _fields(KeysConfig))
    keys = KeysConfig(
        prefix=k.string("prefix", "gw", re.compile(r"[a-z0-9]{1,16}"), "must be 1-16 lowercase letters or digits"),
        max_per_tenant=k.integer("max_per_tenant", 4, 1, 100000),
        default_validity_days=k.integer("default_validity_days", 90, 1, 36500),
        min_validity_days=k.integer("min_validity_days", 10, 1, 36500),
        max_validity_days=k.integer("max_validity_days", 365, 1, 36500),
        expiring_soon_days=k.integer("expiring_soon_days", 20, 0, 36500),
    )
    if not keys.min_validity_days <= keys.default_validity_days <= keys.max_validity_days:
        problems.append("keys.default_validity_days: must be between min_validity_days and max_validity_days")
    t = Reader(node.get("tokens"), "tokens", problems, _fields(TokensConfig))
    tokens = TokensConfig(
        path=t.string("path", "/api/v1/auth/token", re.compile(r"/[^?#\s]*"), "must be a path starting with /"),
        ttl=t.integer("ttl", 3600, 1, 86400 * 30), issuer=t.string("issuer", "gateway"),
        audience=t.string("audience", "gateway"), algorithm=t.choice("algorithm", "EdDSA", ("EdDSA", "RS256", "ES256")),
        leeway=t.number("leeway", 5, 0, 300, open_lo=False),
        signing_keys=tuple(t.get("signing_keys", [], lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
                                 "must be a list of PEM file paths")),
        identity_ttl=t.integer("identity_ttl", 60, 1, 60),
    )
    lg = Reader(node.get("logging"), "logging", problems, _fields(LoggingConfig))
    logging_cfg = LoggingConfig(
        level=lg.choice("level", "info", ("debug", "info", "warning", "error")),
        access_log=lg.boolean("access_log", True),
        access_log_sample_rate=lg.number("access_log_sample_rate", 1.0, 0, 1, open_lo=False),
    )
    m = Reader(node.get("metrics"), "metrics", problems, _fields(MetricsConfig))
    metrics = MetricsConfig(enabled=m.boolean("enabled", True), per_tenant_label=m.boolean("per_tenant_label", False))
    c = Reader(node.get("call_log"), "call_log", problems, _fields(CallLogConfig))
    call_log = CallLogConfig(
        enabled=c.boolean("enabled", True), flush_interval=c.number("flush_interval", 0.2),
        buffer_size=c.integer("buffer_size", 10000, 1), retention_days=c.integer("retention_days", 30, 1),
        max_rows=c.integer("max_rows", 1000000, 1),
    )
    plans = _plans(node.get("plans"), problems)
    routes: list[RouteConfig] = []
    raw_routes = top.get("routes", [], lambda v: isinstance(v, list), "must be a list of routes")
    seen_names: dict[str, int] = {}
    seen_paths: dict[str, list[tuple[int, set[str]]]] = {}
    for i, raw in enumerate(raw_routes):
        route = _route(raw, i, problems)
        if route is None:
            continue
        if route.name in seen_names:
            problems.append(f"routes[{i}].name: duplicates routes[{seen_names[route.name]}]")
        seen_names.setdefault(route.name, i)
        shape = _shape(route.path).lower()  # paths equal apart from letter case are one path to some upstreams
        for j, methods in seen_paths.get(shape, []):
            overlap = methods & set(route.methods)
            if overlap:
                problems.append(f"routes[{i}].path: duplicates routes[{j}] for methods {', '.join(sorted(overlap))}")
        seen_paths.setdefault(shape, []).append((i, set(route.methods)))
        if _shape(tokens.path) == shape:
            problems.append(f"routes[{i}].path: is the token exchange path (tokens.path)")
        if route.name == tokens.audience:
            # identity assertions name the route as their audience, exchange tokens name
            # tokens.audience: the same value would make either pass for the other
            problems.append(f"routes[{i}].name: is the audience of exchange tokens (tokens.audience)")
        routes.append(route)
    if problems:
        raise ConfigError(problems)
    return Config(
        server=server, data_dir=data_dir, admin=admin, store=store, ratelimit=ratelimit,
        plans=plans,
        keys=keys, tokens=tokens, logging=logging_cfg, metrics=metrics, call_log=call_log,
        routes=tuple(routes), source=source,
    )


def load_config(path: str | os.PathLike[str]) -> Config:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{path}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}"]) from None
    return parse_config(data, source=str(path))
