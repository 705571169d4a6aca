"""The rules that read more than one key, run on the sections that passed their own checks.

A rule that reads a value which is a placeholder for an unset variable (check-config) is skipped:
it would judge the placeholder, not the value the gateway will run with.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from gateway.config.accounts import KeysConfig, SelfApiConfig, TokensConfig
from gateway.config.fields import route_shape
from gateway.config.limits import RateLimitConfig
from gateway.config.listeners import ServerConfig
from gateway.config.portal import PortalConfig
from gateway.config.problems import Problem
from gateway.config.routes import RouteConfig, UpstreamTLSConfig
from gateway.config.scanning import SecretScanningConfig
from gateway.config.webhooks import WebhooksConfig
from gateway.tls import TLSError, client_context


class Rules:
    def __init__(self, sections: Mapping[str, Any], unresolved: Collection[str]) -> None:
        self.sections = sections
        self.unresolved = unresolved
        self.problems: list[Problem] = []

    def known(self, *prefixes: str) -> bool:
        """Every value under these paths was read from the file (none is a placeholder)."""
        return not any(p == prefix or p.startswith((prefix + ".", prefix + "["))
                       for p in self.unresolved for prefix in prefixes)

    def run(self, routes: list[tuple[int, RouteConfig]]) -> list[Problem]:
        for rule in RULES:
            rule(self)
        self.routes(routes)
        return self.problems

    def routes(self, routes: list[tuple[int, RouteConfig]]) -> None:
        tokens: TokensConfig | None = self.sections.get("tokens")
        scanning: SecretScanningConfig | None = self.sections.get("secret_scanning")
        self_api: SelfApiConfig | None = self.sections.get("self_api")
        seen_names: dict[str, int] = {}
        seen_paths: dict[str, list[tuple[int, set[str]]]] = {}
        checked: dict[tuple[str | None, ...], str | None] = {}  # files -> their problem (each read once)
        for i, route in routes:
            where = f"routes[{i}]"
            self.upstream_tls(i, "upstream", route.upstream, route.upstream_tls, checked)
            self.upstream_tls(i, "sandbox_upstream", route.sandbox_upstream, route.sandbox_upstream_tls, checked)
            if self.known(f"{where}.name"):
                if route.name in seen_names:
                    self.problems.append(Problem(("routes", i, "name"), f"duplicates routes[{seen_names[route.name]}]"))
                seen_names.setdefault(route.name, i)
                if tokens is not None and self.known("tokens.audience") and route.name == tokens.audience:
                    # identity assertions name the route as their audience, exchange tokens name
                    # tokens.audience: the same value would make either pass for the other
                    self.problems.append(Problem(("routes", i, "name"),
                                                 "is the audience of exchange tokens (tokens.audience)"))
            if not self.known(f"{where}.path", f"{where}.methods"):
                continue
            shape = route_shape(route.path).lower()  # paths equal apart from letter case are one path to some upstreams
            for j, methods in seen_paths.get(shape, []):
                overlap = methods & set(route.methods)
                if overlap:
                    self.problems.append(Problem(("routes", i, "path"),
                                                 f"duplicates routes[{j}] for methods {', '.join(sorted(overlap))}"))
            seen_paths.setdefault(shape, []).append((i, set(route.methods)))
            if tokens is not None and self.known("tokens.path") and route_shape(tokens.path) == shape:
                self.problems.append(Problem(("routes", i, "path"), "is the token exchange path (tokens.path)"))
            if (scanning is not None and scanning.enabled and self.known("secret_scanning.enabled", "secret_scanning.path")
                    and within(route.path, scanning.path)):
                self.problems.append(Problem(("routes", i, "path"), "is at or below the secret-scanning receiver's "
                                             f"path (secret_scanning.path {scanning.path})"))
            if self_api is not None and self_api.enabled and self.known("self_api") \
                    and within(route.path, self_api.path):
                self.problems.append(Problem(("routes", i, "path"),
                                             f"is at or below the caller's own endpoints (self_api.path {self_api.path})"))
            portal: PortalConfig | None = self.sections.get("portal")
            if portal is not None and portal.enabled and self.known("portal.path", "portal.enabled") \
                    and within(route.path, portal.path):
                self.problems.append(Problem(("routes", i, "path"),
                                             f"is under the tenant portal's path {portal.path} (portal.path), "
                                             "which the portal serves whole"))

    def upstream_tls(self, i: int, key: str, url: str | None, tls: UpstreamTLSConfig | None,
                     checked: dict[tuple[str | None, ...], str | None]) -> None:
        """An upstream's TLS settings fit its URL, and their files make a client context now (so a
        reload or check-config refuses a missing or broken file instead of the first request)."""
        if tls is None:
            return
        where = ("routes", i, f"{key}_tls")
        if url is None or self.known(f"routes[{i}].{key}") and not url.lower().startswith("https://"):
            self.problems.append(Problem(where, f"needs an https:// {key}"))
        if tls.key_file is not None and tls.cert_file is None:
            self.problems.append(Problem((*where, "key_file"), "needs cert_file"))
            return
        if not self.known(f"routes[{i}].{key}_tls"):
            return  # a file named by an unset variable: nothing to read here
        if tls.files not in checked:
            try:
                client_context(*tls.files)
                checked[tls.files] = None
            except TLSError as exc:
                checked[tls.files] = str(exc)
        problem = checked[tls.files]
        if problem is not None:
            self.problems.append(Problem(where, problem))


def within(route_path: str, portal_path: str) -> bool:
    """Whether every request a route matches is a request for the portal, the caller's own
    endpoints or the secret-scanning receiver (so the route could never be reached): its first
    segments name that path, a `{param}` matching any segment and letter case ignored (how a
    case-insensitive upstream would read it)."""
    route = [s for s in route_path.split("/") if s]
    portal = [s for s in portal_path.lower().split("/") if s]
    if len(route) < len(portal):
        return False
    return all(r.startswith("{") or r.lower() == p for r, p in zip(route, portal, strict=False))


def _tls(rules: Rules) -> None:
    server: ServerConfig | None = rules.sections.get("server")
    if server is None or not rules.known("server.tls"):
        return
    tls = server.tls
    has_files = tls.cert_file is not None and tls.key_file is not None
    if tls.self_signed == has_files or (not has_files and (tls.cert_file or tls.key_file)):
        rules.problems.append(Problem(("server", "tls"), "set cert_file and key_file, or self_signed: true (one of the two)"))


def _workers(rules: Rules) -> None:
    server: ServerConfig | None = rules.sections.get("server")
    ratelimit: RateLimitConfig | None = rules.sections.get("ratelimit")
    if server is None or ratelimit is None or not rules.known("server.workers", "ratelimit.backend"):
        return
    if ratelimit.backend == "memory" and server.workers > 1:
        rules.problems.append(Problem(("ratelimit", "backend"), "the memory backend cannot share limits across "
                                      "workers; use redis or workers: 1"))


def _validity(rules: Rules) -> None:
    keys: KeysConfig | None = rules.sections.get("keys")
    if keys is None or not rules.known("keys"):
        return
    if not keys.min_validity_days <= keys.default_validity_days <= keys.max_validity_days:
        rules.problems.append(Problem(("keys", "default_validity_days"),
                                      "must be between min_validity_days and max_validity_days"))


def _backoff(rules: Rules) -> None:
    webhooks: WebhooksConfig | None = rules.sections.get("webhooks")
    if webhooks is None or not rules.known("webhooks.backoff_base", "webhooks.backoff_max"):
        return
    if webhooks.backoff_base > webhooks.backoff_max:
        rules.problems.append(Problem(("webhooks", "backoff_max"), "must be at least backoff_base"))


def _secret_scanning(rules: Rules) -> None:
    scanning: SecretScanningConfig | None = rules.sections.get("secret_scanning")
    if scanning is None or not rules.known("secret_scanning"):
        return
    identifiers = [key.key_identifier for key in scanning.public_keys]
    for i, identifier in enumerate(identifiers):
        if identifier in identifiers[:i]:
            rules.problems.append(Problem(("secret_scanning", "public_keys", i, "key_identifier"),
                                          f"duplicates public_keys[{identifiers.index(identifier)}]"))
    if not scanning.enabled:
        return
    if not scanning.public_keys:
        rules.problems.append(Problem(("secret_scanning", "public_keys"),
                                      "must list at least one key when enabled (unsigned reports are refused)"))
    tokens: TokensConfig | None = rules.sections.get("tokens")
    own = {"/.well-known/jwks.json": "the JWKS path"}
    if tokens is not None and rules.known("tokens.path"):
        own[tokens.path] = "the token exchange path (tokens.path)"
    self_api: SelfApiConfig | None = rules.sections.get("self_api")
    if self_api is not None and self_api.enabled and rules.known("self_api"):
        for name in ("version", "me"):
            own[f"{self_api.path}/{name}"] = f"one of the caller's own endpoints (self_api.path {self_api.path})"
    if scanning.path in own:
        rules.problems.append(Problem(("secret_scanning", "path"), f"is {own[scanning.path]}"))


    portal: PortalConfig | None = rules.sections.get("portal")
    if portal is not None and portal.enabled and rules.known("portal") and within(scanning.path, portal.path):
        rules.problems.append(Problem(("secret_scanning", "path"), f"is under the tenant portal's path {portal.path}"))


def _portal(rules: Rules) -> None:
    portal: PortalConfig | None = rules.sections.get("portal")
    tokens: TokensConfig | None = rules.sections.get("tokens")
    if portal is None or not portal.enabled or not rules.known("portal"):
        return
    if portal.session_idle > portal.session_max:
        rules.problems.append(Problem(("portal", "session_idle"), "must be at most session_max"))
    if tokens is not None and rules.known("tokens.path") and within(tokens.path, portal.path):
        rules.problems.append(Problem(("portal", "path"), "covers the token exchange path (tokens.path)"))
    self_api: SelfApiConfig | None = rules.sections.get("self_api")
    if self_api is not None and self_api.enabled and rules.known("self_api") \
            and (within(self_api.path, portal.path) or within(portal.path, self_api.path)):
        # one would hide (part of) the other on the proxy listener, which serves both
        rules.problems.append(Problem(("portal", "path"), f"overlaps the caller's own endpoints (self_api.path "
                                      f"{self_api.path}): neither may be at or below the other"))


RULES: tuple[Callable[[Rules], None], ...] = (_tls, _workers, _validity, _backoff, _portal, _secret_scanning)
