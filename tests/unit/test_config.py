"""Config validation: defaults, env expansion, and every problem at once with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"server": {"tls": {"self_signed": True}}}


def problems(data: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=env or {})
    return info.value.problems


def test_minimal_file_gets_every_default() -> None:
    cfg = parse_config(MINIMAL, env={})
    assert (cfg.server.host, cfg.server.port, cfg.server.max_body_bytes) == ("127.0.0.1", 8443, 10485760)
    assert cfg.store.url == "sqlite:///./data/gateway.db" and cfg.store.cache_ttl == 5
    assert {n: p.requests_per_minute for n, p in cfg.plans.items()} == {"starter": 100, "professional": 500, "enterprise": 2000}
    assert cfg.keys.prefix == "gw" and cfg.tokens.path == "/api/v1/auth/token" and cfg.routes == ()


def test_examples_load() -> None:
    for name in ("gateway.yaml", "demo.yaml"):
        load_config(ROOT / "config" / name)


def test_environment_expansion() -> None:
    data = {**MINIMAL, "admin": {"token_env": "${TOKEN_VAR}"}, "data_dir": "${DIR:-/var/lib/gw}"}
    cfg = parse_config(data, env={"TOKEN_VAR": "MY_TOKEN"})
    assert cfg.admin.token_env == "MY_TOKEN" and cfg.data_dir == "/var/lib/gw"
    assert problems({**MINIMAL, "data_dir": "${NOPE}"}) == ["data_dir: environment variable NOPE is not set"]
    # a value that is one variable takes its YAML type: numbers and booleans from the environment
    typed = {"server": {"tls": {"self_signed": "${SELF_SIGNED}"}, "port": "${PORT}", "grace_period": "${GRACE:-2.5}"},
             "ratelimit": {"redis_prefix": "${PREFIX}"},
             "routes": [{"name": "r", "path": "/r", "upstream": "http://127.0.0.1:${UPSTREAM_PORT}"}]}
    cfg = parse_config(typed, env={"SELF_SIGNED": "true", "PORT": "9443", "PREFIX": "gw:x:", "UPSTREAM_PORT": "81"})
    assert (cfg.server.port, cfg.server.tls.self_signed, cfg.server.grace_period) == (9443, True, 2.5)
    assert cfg.ratelimit.redis_prefix == "gw:x:" and cfg.routes[0].upstream.endswith(":81")
    assert problems({**MINIMAL, "server": {"tls": {"self_signed": True}, "port": "${PORT}"}}, env={"PORT": "x"}) == [
        "server.port: must be an integer between 0 and 65535"]
    # only where the field wants a number or boolean: a string field keeps the text as it is
    texts = {**MINIMAL, "keys": {"prefix": "${P}"}, "tokens": {"issuer": "${I}", "audience": "${A}"}}
    cfg = parse_config(texts, env={"P": "2024", "I": "on", "A": "12:30"})
    assert (cfg.keys.prefix, cfg.tokens.issuer, cfg.tokens.audience) == ("2024", "on", "12:30")
    assert problems({**MINIMAL, "server": {"tls": {"self_signed": True}, "port": "${PORT}"}},
                    env={"PORT": "9" * 5000}) == ["server.port: must be an integer between 0 and 65535"]


def test_every_problem_is_reported_at_once_with_paths() -> None:
    found = problems({
        "server": {"port": 99999, "tls": {"self_signed": True}, "colour": "red"},
        "routes": [
            {"name": "a", "path": "/a", "upstream": "http://127.0.0.1:1"},
            {"name": "b", "path": "/b", "upstream": "ftp://nope"},
        ],
    })
    assert "server.port: must be an integer between 0 and 65535" in found
    assert "server.colour: unknown key" in found
    assert "routes[1].upstream: must be an http(s) URL without query or fragment" in found
    assert len(found) == 3


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"server": {"port": True, "tls": {"self_signed": True}}}, "server.port:"),
        ({"server": {}}, "server.tls: is required"),
        ({"server": {"tls": {"self_signed": True, "cert_file": "a", "key_file": "b"}}}, "server.tls:"),
        ({"server": {"tls": {"cert_file": "a"}}}, "server.tls:"),
        ({**MINIMAL, "server": {**MINIMAL["server"], "trusted_proxies": ["10.0.0.0/8", "nope"]}},
         "server.trusted_proxies[1]: not an IP network"),
        ({**MINIMAL, "server": {**MINIMAL["server"], "workers": 2}}, "ratelimit.backend: the memory backend"),
        ({**MINIMAL, "keys": {"min_validity_days": 100}}, "keys.default_validity_days:"),
        ({**MINIMAL, "keys": {"prefix": "GW_"}}, "keys.prefix:"),
        ({**MINIMAL, "plans": {"gold": {"requests_per_minute": 0}}}, "plans.gold.requests_per_minute:"),
        ({**MINIMAL, "store": {"url": "mysql://x"}}, "store.url:"),
        ({**MINIMAL, "ratelimit": {"on_backend_error": "maybe"}}, "ratelimit.on_backend_error:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a/../b", "upstream": "http://h"}]}, "routes[0].path:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a/{x}/{x}", "upstream": "http://h"}]}, "routes[0].path:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a", "upstream": "http://h/?q=1"}]}, "routes[0].upstream:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a", "upstream": "http://u:p@h"}]}, "routes[0].upstream:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a", "upstream": "http://h", "auth": ["magic"]}]}, "routes[0].auth:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a", "upstream": "http://h", "timeout": 0}]}, "routes[0].timeout:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a", "upstream": "http://h", "idle_timeout": 0}]},
         "routes[0].idle_timeout:"),
        ({**MINIMAL, "routes": [{"name": "a", "path": "/a", "upstream": "http://h", "test_keys": "production"}]},
         "routes[0].test_keys: must be one of sandbox, allow"),
        ({**MINIMAL, "routes": [{"path": "/a", "upstream": "http://h"}]}, "routes[0].name: is required"),
        ({**MINIMAL, "routes": [{"name": "t", "path": "/api/v1/auth/token", "upstream": "http://h"}]},
         "routes[0].path: is the token exchange path"),
        ({**MINIMAL, "routes": [{"name": "s", "path": "/gateway/v1", "upstream": "http://h"}]},
         "routes[0].path: is at or below the caller's own endpoints"),
        ({**MINIMAL, "routes": [{"name": "s", "path": "/Gateway/{v}/me/x", "upstream": "http://h"}]},
         "routes[0].path: is at or below the caller's own endpoints"),
        ({**MINIMAL, "self_api": {"path": "/own"}, "routes": [{"name": "s", "path": "/own/me", "upstream": "http://h"}]},
         "routes[0].path: is at or below the caller's own endpoints (self_api.path /own)"),
        ({**MINIMAL, "self_api": {"path": "/own/"}}, "self_api.path: must be a path of one or more segments"),
        ({**MINIMAL, "self_api": {"api_version": "1 beta"}}, "self_api.api_version: must be 1-64"),
        ([1, 2], "(top level): must be a mapping"),
    ],
)
def test_rules(data, expected) -> None:
    assert any(p.startswith(expected) for p in problems(data)), problems(data)


def test_duplicate_routes() -> None:
    found = problems({**MINIMAL, "routes": [
        {"name": "a", "path": "/a/{x}", "upstream": "http://h", "methods": ["GET", "POST"]},
        {"name": "a", "path": "/a/{y}", "upstream": "http://h", "methods": ["POST"]},
        {"name": "c", "path": "/a/{z}", "upstream": "http://h", "methods": ["DELETE"]},
    ]})
    assert found == ["routes[1].name: duplicates routes[0]", "routes[1].path: duplicates routes[0] for methods POST"]


def test_the_portals_path_is_the_portals_whole() -> None:
    """A route at or under portal.path could never be reached (the portal is matched first): refused.
    A route above it ("/") keeps everything else; the portal disabled claims nothing."""
    def route(path: str) -> dict[str, str]:
        return {"name": path.strip("/").replace("/", "-").replace("{", "").replace("}", "") or "root",
                "path": path, "upstream": "http://h"}

    portal = {"enabled": True, "path": "/portal"}
    found = problems({**MINIMAL, "portal": portal, "routes": [
        route("/portal"), route("/Portal/api"), route("/{tenant}/keys"), route("/"), route("/portals"), route("/api")]})
    assert found == ["routes[0].path: is under the tenant portal's path /portal (portal.path), which the portal serves whole",
                     "routes[1].path: is under the tenant portal's path /portal (portal.path), which the portal serves whole",
                     "routes[2].path: is under the tenant portal's path /portal (portal.path), which the portal serves whole"]
    assert parse_config({**MINIMAL, "portal": {"path": "/portal"}, "routes": [route("/portal")]}, env={}).routes
    assert problems({**MINIMAL, "portal": {"enabled": True, "path": "/api"}}) == [
        "portal.path: covers the token exchange path (tokens.path)"]


def test_the_portal_and_the_callers_own_endpoints_are_not_one_under_the_other() -> None:
    for portal_path, self_path in (("/gateway", "/gateway/v1"), ("/gateway/v1/portal", "/gateway/v1"),
                                   ("/self", "/self"), ("/Self/api", "/self")):
        assert problems({**MINIMAL, "portal": {"enabled": True, "path": portal_path},
                         "self_api": {"path": self_path}}) == [
            f"portal.path: overlaps the caller's own endpoints (self_api.path {self_path}): "
            "neither may be at or below the other"], (portal_path, self_path)
    for portal, self_api in (({"enabled": True, "path": "/gateway-portal"}, {"path": "/gateway"}),
                             ({"enabled": True, "path": "/gateway"}, {"enabled": False, "path": "/gateway/v1"}),
                             ({"enabled": False, "path": "/gateway"}, {"path": "/gateway/v1"})):
        assert parse_config({**MINIMAL, "portal": portal, "self_api": self_api}, env={}).portal.path == portal["path"]
    for bad in ("/", "portal", "/a/{x}", "/a//b", "/a?b"):
        assert problems({**MINIMAL, "portal": {"enabled": True, "path": bad}})[0].startswith("portal.path:"), bad
    assert problems({**MINIMAL, "portal": {"enabled": True, "session_idle": 7200, "session_max": 3600}}) == [
        "portal.session_idle: must be at most session_max"]


def test_route_defaults_and_public_routes() -> None:
    raw = {"name": "a", "path": "/a", "upstream": "https://h:8443/base", "auth": [], "methods": ["get"]}
    cfg = parse_config({**MINIMAL, "routes": [raw]}, env={})
    route = cfg.routes[0]
    assert route.auth == () and route.methods == ("GET",) and route.timeout == 30 and route.strip_prefix is False
    assert route.idle_timeout == 60 and route.test_keys == "sandbox"


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read" in str(missing.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError) as invalid:
        load_config(bad)
    assert "invalid YAML" in str(invalid.value) and "line" in str(invalid.value)


def test_a_route_named_like_the_token_audience_is_refused() -> None:
    # an identity assertion (audience: the route) would then pass as an exchange token, and back
    route = {"name": "gateway", "path": "/internal", "upstream": "http://127.0.0.1:9000"}
    assert problems({**MINIMAL, "routes": [route]}) == [
        "routes[0].name: is the audience of exchange tokens (tokens.audience)"]
    assert parse_config({**MINIMAL, "routes": [route], "tokens": {"audience": "api.example"}}, env={}).routes


def test_failed_credential_budget_defaults_and_bounds() -> None:
    cfg = parse_config(MINIMAL, env={})
    assert (cfg.ratelimit.failed_auth_per_minute, cfg.ratelimit.failed_auth_delay) == (1200, 1.0)
    assert problems({**MINIMAL, "ratelimit": {"failed_auth_per_minute": -1, "failed_auth_delay": 0}}) == [
        "ratelimit.failed_auth_per_minute: must be an integer between 0 and 1000000000",
        "ratelimit.failed_auth_delay: must be a number > 0 and <= 60",
    ]


def test_route_paths_equal_apart_from_letter_case_are_duplicates() -> None:
    routes = [{"name": "a", "path": "/API/Items", "upstream": "http://127.0.0.1:1"},
              {"name": "b", "path": "/api/items", "upstream": "http://127.0.0.1:1", "methods": ["GET"]}]
    assert problems({**MINIMAL, "routes": routes}) == ["routes[1].path: duplicates routes[0] for methods GET"]


def test_routes_above_the_callers_own_endpoints_or_with_them_off_are_accepted() -> None:
    for path in ("/", "/gateway", "/gateway/v2/me", "/{any}"):
        parse_config({**MINIMAL, "routes": [{"name": "a", "path": path, "upstream": "http://h"}]}, env={})
    data = {**MINIMAL, "self_api": {"enabled": False}, "routes": [{"name": "a", "path": "/gateway/v1", "upstream": "http://h"}]}
    parse_config(data, env={})
