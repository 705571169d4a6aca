"""The rules that read more than one key, run on the sections that passed their own checks.

A rule that reads a value which is a placeholder for an unset variable (check-config) is skipped:
it would judge the placeholder, not the value the gateway will run with.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from gateway.config.fields import route_shape
from gateway.config.problems import Problem
from gateway.config.sections import (
    KeysConfig,
    RateLimitConfig,
    RouteConfig,
    SelfApiConfig,
    ServerConfig,
    TokensConfig,
    WebhooksConfig,
)


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
        self_api: SelfApiConfig | None = self.sections.get("self_api")
        seen_names: dict[str, int] = {}
        seen_paths: dict[str, list[tuple[int, set[str]]]] = {}
        for i, route in routes:
            where = f"routes[{i}]"
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
            if self_api is not None and self_api.enabled and self.known("self_api") and within(shape, self_api.path):
                self.problems.append(Problem(("routes", i, "path"),
                                             f"is at or below the caller's own endpoints (self_api.path {self_api.path})"))


def within(shape: str, base: str) -> bool:
    """Whether a route of this shape could match a path at or below `base` (a `{}` segment
    matches any; letter case aside, as for duplicate routes)."""
    segments = [s for s in shape.split("/") if s]
    wanted = [s.lower() for s in base.split("/") if s]
    return len(segments) >= len(wanted) and all(s in ("{}", w) for s, w in zip(segments, wanted, strict=False))


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


RULES: tuple[Callable[[Rules], None], ...] = (_tls, _workers, _validity, _backoff)
