"""Path normalisation and route matching, as properties over generated paths (hypothesis)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.errors import BadRequest, MethodNotAllowed, RouteNotFound
from gateway.routing import RouteTable, normalize_path
from tests.conftest import examples

SEGMENT = st.one_of(
    st.sampled_from(["", ".", "..", "%2e", "%2E%2e", ".%2e", "api", "v1", "%2F", "%41", "a b", "~x", "%7e"]),
    st.text(alphabet="abcXYZ019-._~%2eE", min_size=1, max_size=6),
)
PATHS = st.lists(SEGMENT, max_size=8).map(lambda parts: "/" + "/".join(parts))


def table(routes: list[dict]) -> RouteTable:
    return RouteTable(parse_config({"server": {"tls": {"self_signed": True}}, "routes": routes}, env={}).routes)


def clean(path: str) -> str | None:
    try:
        return normalize_path(path)
    except BadRequest:
        return None


@given(PATHS)
@settings(max_examples=examples(500))
def test_normalised_paths_have_no_dot_segments_and_are_stable(raw: str) -> None:
    path = clean(raw)
    if path is None:
        return
    assert path.startswith("/")
    segments = path.split("/")[1:]
    assert "." not in segments and ".." not in segments
    assert "" not in segments[:-1]  # no empty segment except a trailing slash
    assert normalize_path(path) == path  # normalising twice changes nothing


@given(PATHS)
@settings(max_examples=examples(500))
def test_dot_segments_never_climb_out_of_the_matched_prefix(raw: str) -> None:
    path = clean("/api/v1/" + raw.lstrip("/"))
    if path is None:
        return
    routes = table([
        {"name": "public", "path": "/api/v1/public", "upstream": "http://127.0.0.1:1"},
        {"name": "admin", "path": "/api/v1/admin", "upstream": "http://127.0.0.1:2"},
    ])
    try:
        match = routes.match("GET", path)
    except RouteNotFound:
        return
    prefix = match.route.path
    assert path == prefix or path.startswith(prefix + "/")


@pytest.mark.parametrize("raw", ["/a/%00", "/a/%5c", "/a\\b", "/a/%zz", "/a/%", "a/b", "/caf\u00e9", "/a/%80",
                                 "/a/%BF", "/a/%C0%AE", "/a/%C3", "/a/%E2%82"],
                         ids=lambda value: re.sub(r"[^A-Za-z0-9%/._-]", "_", value))
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        normalize_path(raw)


def test_longest_prefix_wins_by_whole_segments_and_methods_are_checked() -> None:
    routes = table([
        {"name": "items", "path": "/api/items", "upstream": "http://127.0.0.1:1"},
        {"name": "one", "path": "/api/items/{item}/parts", "upstream": "http://127.0.0.1:2", "methods": ["GET"]},
    ])
    assert routes.match("GET", "/api/items/7/parts/3").route.name == "one"
    assert routes.match("GET", "/api/items/7/partsx").route.name == "items"
    with pytest.raises(RouteNotFound):
        routes.match("GET", "/api/itemsx")
    with pytest.raises(MethodNotAllowed):
        routes.match("POST", "/api/items/7/parts")


# Pieces that upstreams read differently: an encoded slash, `;` or `%`, path parameters, dot
# segments hidden behind those, a format suffix, letter case.
LENIENT_PIECE = st.sampled_from(["api", "API", "Api", "v1", "V1", "visitors", "VISITORS", "Visitors", ";x", ";",
                                 "%2F", "%2f", "%3B", "%3b", "%252F", "%253B", "%252E%252E", "..", ".json", "x", "",
                                 "%3F", "%3fa=1", "%23", "%253F", "%2523x", "%20", "%2520", ".", "::$DATA",
                                 "%3A%3A%24DATA", ":x", ".xml"])
LENIENT_PATHS = st.lists(LENIENT_PIECE, min_size=1, max_size=8).map(lambda parts: "/" + "".join(
    p if p.startswith(("%", ";", ".", ":")) or not i else "/" + p for i, p in enumerate(parts)))


def resolved(text: str) -> str:
    """Empty segments merged and dot segments resolved, as upstreams do after decoding."""
    stack: list[str] = []
    for segment in text.split("/"):
        if segment == "..":
            if stack:
                stack.pop()
        elif segment and segment != ".":
            stack.append(segment)
    return "/" + "/".join(stack)


def _trimmed(segment: str) -> str:
    """Windows (IIS): an NTFS stream cut off, trailing spaces and dots trimmed."""
    segment = segment.split(":", 1)[0].rstrip(" ")
    return segment if segment in (".", "..") else segment.rstrip(" .")


def _unsuffixed(segment: str) -> str:
    segment = _trimmed(segment)
    return segment if segment in (".", "..") or "." not in segment[1:] else segment[: segment.index(".", 1)]


def lenient_readings(path: str) -> set[str]:
    """Every way a lenient upstream chain might read a path: escapes decoded up to twice, `;params`
    dropped, cut at a decoded `?` or `#`, dot segments resolved after that, trailing spaces, dots
    and NTFS streams trimmed, a format suffix dropped, letter case ignored."""
    out = set()
    for base in (path, path.replace("%25", "%")):
        decoded = base
        for escape, char in (("%2F", "/"), ("%3B", ";"), ("%2E", "."), ("%20", " "), ("%3A", ":"), ("%24", "$")):
            decoded = decoded.replace(escape, char).replace(escape.lower(), char)
        for text in (base, decoded, "/".join(s.split(";", 1)[0] for s in decoded.split("/"))):
            for cut in (text, re.split("%3[Ff]|%23", text)[0]):
                reading = resolved(cut)
                segments = reading.split("/")
                trimmed = resolved("/".join(map(_trimmed, segments)))
                unsuffixed = resolved("/".join(map(_unsuffixed, segments)))
                last = reading.rsplit("/", 1)[-1]
                suffixless = reading[: reading.rfind(".")] if "." in last[1:] else reading
                for r in (reading, trimmed, unsuffixed, suffixless):
                    out |= {r, r.lower()}
    return out


def protected_somewhere(path: str, protected: str) -> bool:
    return any(r == protected or r.startswith(protected + "/") for r in lenient_readings(path))


@pytest.mark.parametrize("protected", ["/api/v1/visitors", "/api/Visitors"])
@given(raw=LENIENT_PATHS)
@settings(max_examples=examples(1500))
def test_a_public_route_never_takes_a_path_some_upstream_reads_as_the_protected_one(protected: str, raw: str) -> None:
    routes = table([{"name": "site", "path": "/", "upstream": "http://127.0.0.1:1", "auth": []},
                    {"name": "protected", "path": protected, "upstream": "http://127.0.0.1:1"}])
    path = clean(raw)
    if path is None:
        return
    try:
        route = routes.match("GET", path).route.name
    except BadRequest:
        return
    assert not (route == "site" and protected_somewhere(path, protected.lower())), (raw, path)


def test_paths_real_apis_use_are_not_refused() -> None:
    """Dotted routes, ids with `%2F`, mixed-case ids: where no reading reaches a route with another
    policy, the path goes through."""
    up = "http://127.0.0.1:1"
    routes = table([
        {"name": "site", "path": "/", "upstream": up, "auth": []},
        {"name": "spec", "path": "/v1/openapi.json", "upstream": up, "auth": []},
        {"name": "robots", "path": "/robots.txt", "upstream": up, "auth": []},
        {"name": "v1", "path": "/v1", "upstream": up},
        {"name": "version", "path": "/api/v2.1", "upstream": up},
        {"name": "project", "path": "/api/v4/projects/{id}", "upstream": up},
        {"name": "merges", "path": "/api/v4/projects/{id}/merge_requests", "upstream": up},
        {"name": "user", "path": "/v1/users/{id}", "upstream": up},
        {"name": "avatar", "path": "/v1/users/{id}/avatar", "upstream": up},
        {"name": "package", "path": "/npm/{package}", "upstream": up},
        {"name": "package_version", "path": "/npm/{package}/{version}", "upstream": up},
    ])
    for path, name in [
        ("/v1/openapi.json", "spec"), ("/robots.txt", "robots"), ("/api/v2.1", "version"),
        ("/api/v2.1/users", "version"), ("/v1/report.csv", "v1"),
        ("/api/v4/projects/group%2Fname/merge_requests", "merges"), ("/npm/@babel", "package"),
        ("/v1/users/42/avatar.png", "user"), ("/v1/users/AbC-123", "user"), ("/Static/Logo.PNG", "site"),
    ]:
        assert routes.match("GET", normalize_path(path)).route.name == name, path
    # refused on purpose: decoded, `%2F` names a route with another {param} (a key's resources
    # may be checked on it), so an npm-style `@scope%2Fname` needs one route for the whole registry
    with pytest.raises(BadRequest):
        routes.match("GET", normalize_path("/npm/@babel%2Fcore"))


@pytest.mark.parametrize("path", [
    "/api/v1/visitors.json/", "/api/v1/VISITORS.json/", "/api/v1/visitors.a.b", "/api/v1/visitors.tar.gz",
    "/api/v1/visitors%2e%2e", "/api/v1/vi%2573itors", "/%2561pi/v1/visitors",
])
def test_a_suffix_or_a_doubly_encoded_letter_does_not_reach_the_protected_route_through_a_public_one(path: str) -> None:
    routes = table([{"name": "site", "path": "/", "upstream": "http://127.0.0.1:1", "auth": []},
                    {"name": "visitors", "path": "/api/v1/visitors", "upstream": "http://127.0.0.1:1"}])
    try:
        normalised = normalize_path(path)
    except BadRequest:
        return
    with pytest.raises(BadRequest):
        routes.match("GET", normalised)


def test_route_paths_are_plain_ascii_without_escapes() -> None:
    for path in ("/api/%7Eadmin", "/api/\u00e4rzte"):
        with pytest.raises(Exception, match="ASCII without %-escapes"):
            table([{"name": "r", "path": path, "upstream": "http://127.0.0.1:1"}])


def test_remembered_matches_are_the_same_and_bounded() -> None:
    from gateway import routing

    routes = table([
        {"name": "items", "path": "/api/items", "upstream": "http://127.0.0.1:1"},
        {"name": "one", "path": "/api/items/{item}", "upstream": "http://127.0.0.1:2", "methods": ["GET"]},
    ])
    first = routes.match("GET", "/api/items/7")
    assert routes.match("GET", "/api/items/7") is first and first.params == {"item": "7"}
    assert routes.match("GET", "/api/items/8").params == {"item": "8"}
    with pytest.raises(MethodNotAllowed):  # a refusal is decided each time, never remembered
        routes.match("POST", "/api/items/7")
    with pytest.raises(MethodNotAllowed):
        routes.match("POST", "/api/items/7")
    for i in range(routing._MATCHED_MAX + 10):  # made-up paths cannot grow it
        routes.match("GET", f"/api/items/{i}")
    assert len(routes._matched) <= routing._MATCHED_MAX
    long_path = "/api/items/" + "x" * 300
    assert routes.match("GET", long_path).params == {"item": "x" * 300}
    assert "GET " + long_path not in routes._matched


def _public_site_and(*protected: str) -> RouteTable:
    return table([{"name": "site", "path": "/", "upstream": "http://127.0.0.1:1", "auth": []}]
                 + [{"name": f"p{i}", "path": p, "upstream": "http://127.0.0.1:1"} for i, p in enumerate(protected)])


@pytest.mark.parametrize("path", [
    "/api/v1/vi%C5%BFitors",            # ſ: `s` to Python's re, Java and .NET ignoring case
    "/api/v1/vis%C4%B1tors",            # ı: `i` once upper-cased
    "/api/v1/v%C4%B0sitors",            # İ: `i` to simple lower-casing
    "/api/v1/%EF%BD%96isitors",         # fullwidth ｖ (NFKC)
    "/api/v1/VI%C5%BFITORS",            # ſ among capitals
    "/api%EF%BC%8Fv1%EF%BC%8Fvisitors",  # fullwidth solidus ／
    "/api/v1/%EF%AC%81les",             # the ligature ﬁ
    "/api/v1/fa%EF%AC%86",              # the ligature ﬆ
    "/api/v1/lin%E2%84%AA",             # KELVIN SIGN
    "/api/v1/visitors%C2%A0",           # NO-BREAK SPACE: a trailing space once NFKC-normalised
    "/api/v1/x/%EF%BC%8E%EF%BC%8E/visitors",  # fullwidth full stops: `..`
    "/api/v1/x/%EF%BC%BC..%EF%BC%BCvisitors",  # fullwidth reverse solidus: `\\`, a slash to IIS
    "/api/v1/vi%25C5%25BFitors",        # ſ encoded twice, for a proxy in between that decodes once
])
def test_unicode_case_folding_and_nfkc_do_not_reach_the_protected_route(path: str) -> None:
    routes = _public_site_and("/api/v1/visitors", "/api/v1/files", "/api/v1/fast", "/api/v1/link")
    with pytest.raises(BadRequest):
        routes.match("GET", normalize_path(path))


@pytest.mark.parametrize("path", ["/api/v1/caf%C3%A9", "/api/v1/%C5%BF", "/api/v1/visit%C3%B6rs", "/%E2%84%AA/x"])
def test_non_ascii_paths_that_name_no_other_route_go_through(path: str) -> None:
    routes = _public_site_and("/api/v1/visitors")
    assert routes.match("GET", normalize_path(path)).route.name == "site"


@pytest.mark.parametrize("path", [
    "/api/v1/visitors%3Fa=1", "/api/v1/visitors%3F", "/api/v1/visitors%23top", "/api/v1/visitors%253Fa=1",
    "/api/v1/visitors%2523x", "/api/v1/visitors;x%3Fy",
    "/api/v1/visitors%3f",  # lower-case escapes are normalised first
])
def test_an_encoded_query_or_fragment_mark_is_read_as_one(path: str) -> None:
    routes = _public_site_and("/api/v1/visitors")
    with pytest.raises(BadRequest):
        routes.match("GET", normalize_path(path))


def test_an_encoded_query_mark_elsewhere_goes_through() -> None:
    routes = _public_site_and("/api/v1/visitors")
    for path in ("/api/v1/visits%3Fa=1", "/search/what%3F", "/api/v1%3Fvisitors"):
        assert routes.match("GET", normalize_path(path)).route.name == "site", path


@pytest.mark.parametrize("path", [
    "/api/v1/visitors%20", "/api/v1/visitors%20%20/1", "/api/v1/visitors.", "/api/v1/visitors..",
    "/api/v1/visitors.%20.", "/api/v1/visitors.xml/1", "/api/v1/visitors.json/1/x.csv",
    "/api/v1/visitors::$DATA", "/api/v1/visitors%3A%3A%24DATA", "/api/v1/visitors::$DATA/1",
    "/api/v1/visitors:stream:$DATA", "/api/v1/visitors%3Ax", "/api/v1%20/visitors", "/api%2E/v1/visitors",
    "/api/v1/x/..%20/visitors",  # `.. ` trimmed is `..`, then resolved
    "/api/v1/visitors%2520",  # a space encoded twice
    "/api/v1/visitors:x", "/api/v1;x/visitors",
], ids=lambda path: re.sub(r"[^A-Za-z0-9%/._-]", "_", path))  # pytest reads `::` in an id as a separator
def test_trailing_spaces_dots_streams_and_suffixes_do_not_reach_the_protected_route(path: str) -> None:
    routes = _public_site_and("/api/v1/visitors")
    with pytest.raises(BadRequest):
        routes.match("GET", normalize_path(path))


def test_look_alike_cuts_spare_the_matched_routes_own_segments() -> None:
    up = "http://127.0.0.1:1"
    routes = table([
        {"name": "site", "path": "/", "upstream": up, "auth": []},
        {"name": "things", "path": "/v1/things", "upstream": up},
        {"name": "batch", "path": "/v1/things:batch", "upstream": up, "auth": []},
        {"name": "dotted", "path": "/v2.1/x", "upstream": up, "auth": []},
        {"name": "v2", "path": "/v2", "upstream": up},
    ])
    assert routes.match("POST", "/v1/things:batch").route.name == "batch"
    assert routes.match("GET", "/v2.1/x/report.csv").route.name == "dotted"
    assert routes.match("GET", "/docs/a%20b.txt").route.name == "site"
    with pytest.raises(BadRequest):  # below the route's own path, the suffix is read as one
        routes.match("GET", "/v1/things:batch/..%20/things")
    with pytest.raises(BadRequest):
        routes.match("GET", "/v1/things.json")


def test_a_literal_route_beats_a_param_route_at_the_same_depth() -> None:
    up = "http://127.0.0.1:1"
    for order in (1, -1):
        routes = table([{"name": "me", "path": "/x/me", "upstream": up},
                        {"name": "any", "path": "/x/{id}", "upstream": up, "auth": []}][::order])
        assert routes.match("GET", "/x/me").route.name == "me"
        assert routes.match("GET", "/x/me/more").route.name == "me"
        assert routes.match("GET", "/x/42").route.name == "any"
        assert routes.match("GET", "/x/42").params == {"id": "42"}
        for path in ("/x/me.json", "/x/me%20", "/x/ME", "/x/m%C3%A9"):
            try:
                name = routes.match("GET", normalize_path(path)).route.name
            except BadRequest:
                continue
            assert name == "me" or path == "/x/m%C3%A9", path


def test_a_deeper_param_route_beats_a_shallower_literal_one() -> None:
    up = "http://127.0.0.1:1"
    routes = table([{"name": "x", "path": "/x", "upstream": up},
                    {"name": "item", "path": "/x/{id}", "upstream": up, "methods": ["GET"]}])
    assert routes.match("GET", "/x/1").route.name == "item"
    assert routes.match("GET", "/x").route.name == "x"
    with pytest.raises(MethodNotAllowed) as refused:  # the best path's methods, never a fallback
        routes.match("POST", "/x/1")
    assert refused.value.headers["Allow"] == "GET"


def test_strip_prefix_keeps_a_trailing_slash_and_the_upstreams_base_path() -> None:
    routes = table([
        {"name": "svc", "path": "/svc", "upstream": "http://127.0.0.1:1/base", "strip_prefix": True},
        {"name": "root", "path": "/", "upstream": "http://127.0.0.1:1", "strip_prefix": True},
        {"name": "kept", "path": "/kept", "upstream": "http://127.0.0.1:1/up/"},
    ])
    def forwarded(path: str) -> str:
        match = routes.match("GET", path)
        return match.forward_path(match.route.upstream)
    assert forwarded("/svc") == "/base"
    assert forwarded("/svc/") == "/base/"
    assert forwarded("/svc/a/b") == "/base/a/b"
    assert forwarded("/svc/a/") == "/base/a/"
    assert forwarded("/") == "/"
    assert forwarded("/other/") == "/other/"
    assert forwarded("/kept/a") == "/up/kept/a"
    assert forwarded("/kept") == "/up/kept"


def test_a_path_made_to_have_too_many_readings_is_refused_before_they_are_matched() -> None:
    routes = _public_site_and("/api/v1/visitors")
    crafted = "/x%2F%3B;a%3F%25%C5%BF/" + "/".join(f"s{i}.x%20" for i in range(8))
    with pytest.raises(BadRequest, match="too many ways to read this path"):
        routes.match("GET", normalize_path(crafted))
    busy_but_real = "/projects/group%2Fname/files/My%20Report.v2.final.pdf;jsessionid=1"
    assert routes.match("GET", normalize_path(busy_but_real)).route.name == "site"


REFUSED = "the path names another route as some upstreams read it"


@pytest.mark.parametrize("path", ["/a/..;x/b", "/a/..;x;y/b", "/a/.;x/b", "/a/..%2F..", "/a/x%2F..%2Fb",
                                  "/a/..%3Bx", "/a/%252E%252E/b", "/a/.%252E;x/b", "/a/%252e%252e/b"])
def test_dot_segments_in_disguise_are_refused_whatever_the_routes(path: str) -> None:
    with pytest.raises(BadRequest, match="a dot segment in disguise"):
        normalize_path(path)


def test_dot_like_segments_that_are_names_go_through() -> None:
    for path in ("/a/...", "/a/..x/b", "/a/x..", "/a/.well-known/b", "/a/x;..", "/a/%2525"):
        assert normalize_path(path) == path, path
    assert normalize_path("/a/./b/../c") == "/a/c"
    assert normalize_path("/a/%2e/b") == "/a/b"


def test_upstream_urls_are_read_once_into_what_a_request_needs() -> None:
    from gateway.routing import Upstream, parse_upstream

    assert parse_upstream("HTTPS://Api.Example.com/base/") == Upstream(
        "https", "api.example.com", 443, "/base", "https://api.example.com", "api.example.com")
    assert parse_upstream("http://127.0.0.1:8080") == Upstream(
        "http", "127.0.0.1", 8080, "", "http://127.0.0.1:8080", "127.0.0.1:8080")
    assert parse_upstream("http://h:80/") == Upstream("http", "h", 80, "", "http://h", "h")
    assert parse_upstream("https://h:80") == Upstream("https", "h", 80, "", "https://h:80", "h:80")
    assert parse_upstream("http://h:443") == Upstream("http", "h", 443, "", "http://h:443", "h:443")
    assert parse_upstream("http://[::1]:9000/x") == Upstream("http", "::1", 9000, "/x", "http://[::1]:9000", "[::1]:9000")
    assert parse_upstream("https://[::1]") == Upstream("https", "::1", 443, "", "https://[::1]", "[::1]")
    assert parse_upstream("http:///x").host == ""
    assert parse_upstream("http://h/baseX/").base_path == "/baseX"


def test_a_compiled_route_keeps_its_settings_and_what_makes_its_policy() -> None:
    up = "http://127.0.0.1:1"
    base = {"name": "r", "path": "/a/{id}", "upstream": up, "methods": ["POST", "GET"], "auth": ["bearer"],
            "timeout": 5}
    variants = [
        base,
        {**base, "name": "sandboxed", "sandbox_upstream": "http://127.0.0.1:2/s"},
        {**base, "name": "stripped", "strip_prefix": True},
        {**base, "name": "limited", "rate_limit_per_minute": 5},
        {**base, "name": "public", "auth": []},
        {**base, "name": "elsewhere", "upstream": "http://127.0.0.1:1/v2"},
        {**base, "name": "other_param", "path": "/b/{other}"},
        {**base, "name": "open_to_tests", "test_keys": "allow"},
    ]
    routes = [table([v]).routes[0] for v in variants]
    first = routes[0]
    assert (first.name, first.path, first.methods, first.allow, first.auth, first.timeout) == (
        "r", "/a/{id}", frozenset({"GET", "POST"}), "GET, POST", frozenset({"bearer"}), 5.0)
    assert isinstance(first.timeout, float)
    assert (first.sandbox_upstream, first.rate_limit_per_minute, first.strip_prefix) == (None, None, False)
    assert (first.depth, first.literal_prefix, first.config.name) == (2, 1, "r")
    assert (first.idle_timeout, isinstance(first.idle_timeout, float)) == (60.0, True)
    assert [r.test_keys_refused for r in routes] == [True, False, True, True, True, True, True, False]
    both = table([{**base, "sandbox_upstream": "http://127.0.0.1:2/s", "test_keys": "allow"}]).routes[0]
    assert not both.test_keys_refused and both.policy == routes[1].policy  # with a sandbox, test_keys changes nothing
    other_sandbox = table([{**base, "sandbox_upstream": "http://127.0.0.1:3/s"}]).routes[0]
    assert other_sandbox.policy != routes[1].policy  # where test keys go is part of it
    assert routes[1].sandbox_upstream is not None and routes[1].sandbox_upstream.origin == "http://127.0.0.1:2"
    assert routes[1].sandbox_upstream.base_path == "/s"
    assert routes[3].rate_limit_per_minute == 5 and routes[2].strip_prefix
    assert len({r.policy for r in routes}) == len(routes)  # each setting is part of the policy
    same = table([{**base, "name": "twin", "path": "/c/{id}", "methods": ["GET"], "timeout": 9,
                   "idle_timeout": 1}]).routes[0]
    assert same.policy == first.policy  # methods, timeouts and name are not


def test_a_capital_in_a_route_path_makes_every_request_path_compared_ignoring_case() -> None:
    routes = _public_site_and("/api/Visitors")
    assert routes.match("GET", "/api/Visitors").route.name == "p0"
    assert routes.match("GET", "/api/Visitors/1").route.name == "p0"
    for path in ("/api/visitors", "/api/visitors/1", "/API/VISITORS", "/api/vi%C5%BFitors"):
        with pytest.raises(BadRequest, match=REFUSED):
            routes.match("GET", normalize_path(path))
    assert routes.match("GET", "/api/other").route.name == "site"


def test_an_all_capitals_path_is_compared_ignoring_case() -> None:
    routes = _public_site_and("/api/v1/visitors")
    for path in ("/API/V1/VISITORS", "/API/V1/VISITORS/42", "/Api/V1/Visitors"):
        with pytest.raises(BadRequest, match=REFUSED):
            routes.match("GET", path)
    assert routes.match("GET", "/API/V1/OTHER").route.name == "site"


def test_a_reading_that_names_a_route_without_the_method_is_refused_too() -> None:
    routes = table([{"name": "site", "path": "/", "upstream": "http://127.0.0.1:1", "auth": []},
                    {"name": "visitors", "path": "/api/v1/visitors", "upstream": "http://127.0.0.1:1",
                     "methods": ["GET"]}])
    with pytest.raises(BadRequest, match=REFUSED):
        routes.match("POST", normalize_path("/api/v1/vi%C5%BFitors"))
    with pytest.raises(BadRequest, match=REFUSED):
        routes.match("POST", normalize_path("/api/v1/visitors.json"))


def test_readings_that_name_no_route_do_not_end_the_check() -> None:
    up = "http://127.0.0.1:1"
    routes = table([{"name": "a", "path": "/a", "upstream": up, "auth": []}, {"name": "b", "path": "/b", "upstream": up}])
    # trimmed one segment at a time, most readings start with `.. ` and name no route; one is `/b`
    with pytest.raises(BadRequest, match=REFUSED):
        routes.match("GET", normalize_path("/a/..%20/..%20/c/..%20/..%20/d/..%20/b"))
    assert routes.match("GET", normalize_path("/a/..%20/..%20/c")).route.name == "a"


@pytest.mark.parametrize("raw, message", [
    ("a/b", "the request target must be an absolute path"),
    ("/caf\u00e9", "the path must be printable ASCII"),
    ("/a\\b", "backslash in path"),
    ("/a/%zz", "malformed percent-escape in path"),
    ("/a/%0a", "encoded control character or backslash in path"),
    ("/a/%C0%AE", "percent-encoded bytes in the path are not UTF-8"),
    ("/a/..;x", "a dot segment in disguise in the path"),
], ids=lambda value: re.sub(r"[^A-Za-z0-9%/._-]", "_", value))  # plain node ids for mutmut
def test_each_refused_path_says_why(raw: str, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalize_path(raw)
    assert refused.value.message == message


def test_empty_dot_and_trailing_segments() -> None:
    for raw, path in [("/a//b", "/a/b"), ("//a", "/a"), ("/a/b/", "/a/b/"), ("/a/b/.", "/a/b/"), ("/a/b/..", "/a/"),
                      ("/a/b/%2e", "/a/b/"), ("/a/b", "/a/b"), ("/", "/"), ("/..", "/"), ("/a/%41/", "/a/A/")]:
        assert normalize_path(raw) == path, raw


def test_the_refusal_names_what_upstreams_do() -> None:
    routes = _public_site_and("/api/v1/visitors")
    with pytest.raises(BadRequest) as refused:
        routes.match("GET", "/api/v1/visitors.json")
    assert refused.value.message == ("the path names another route as some upstreams read it (decoded, cut at ;, "
                                     "? or #, trimmed, without a .suffix, or ignoring case)")


def test_look_alike_cuts_follow_the_segments_a_dot_segment_moved() -> None:
    up = "http://127.0.0.1:1"
    routes = table([{"name": "ab", "path": "/a/b", "upstream": up, "auth": []},
                    {"name": "ac", "path": "/a/c", "upstream": up}, {"name": "c", "path": "/c", "upstream": up}])
    for path in ("/a/b/%EF%BC%8E%EF%BC%8E/c.json", "/a/b/%EF%BC%8E%EF%BC%8E/%EF%BC%8E%EF%BC%8E/c.json"):
        with pytest.raises(BadRequest, match=REFUSED):  # fullwidth dots resolved, then the suffix cut
            routes.match("GET", normalize_path(path))
    assert routes.match("GET", normalize_path("/a/b/x.json")).route.name == "ab"
