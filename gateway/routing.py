"""The route table, compiled once at startup into a segment trie, and path normalisation.

The normalised path is both what is matched and what is forwarded, so a request can never
match one route and reach another path upstream (`/api/v1/visitors/../../admin`).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes, urlsplit

from gateway.errors import BadRequest, MethodNotAllowed, RouteNotFound
from gateway.path_readings import decoded_once_more, readings
from gateway.tls import ClientContexts, TLSError

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_FORBIDDEN_ESCAPES = frozenset({"5C", "7F"} | {f"{i:02X}" for i in range(0x20)})


def _fast_path_ok(raw: str) -> bool:
    return "%" not in raw and "//" not in raw and "/." not in raw and "\\" not in raw


def _hides_a_dot_segment(segment: str) -> bool:
    """A segment harmless here that climbs the tree on some upstream: `..;x` (Tomcat and Jetty drop
    the parameter), `..%2F..` (a WSGI server decodes the slash), `..%3Bx` or `%252E%252E` (a proxy
    in between decodes once more, then Tomcat drops or resolves)."""
    if "." not in segment and "%25" not in segment:
        return False
    for text in (segment, decoded_once_more(segment)):
        for part in text.replace("%3B", ";").replace("%2F", "/").split("/"):
            if part.split(";", 1)[0] in (".", ".."):
                return True
    return False


def normalize_path(raw: str) -> str:
    """RFC 3986 normalisation plus refusal of what upstreams disagree about: NUL and controls,
    `\\`, non-ASCII, percent-encoded bytes that are not UTF-8, dot segments in disguise."""
    if not raw.startswith("/"):
        raise BadRequest("the request target must be an absolute path")
    if not raw.isascii() or not raw.isprintable():
        raise BadRequest("the path must be printable ASCII")
    if _fast_path_ok(raw):
        return raw
    if "\\" in raw:
        raise BadRequest("backslash in path")
    out: list[str] = []
    high_bytes = False
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "%":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise BadRequest("malformed percent-escape in path")
            pair = pair.upper()
            if pair in _FORBIDDEN_ESCAPES:
                raise BadRequest("encoded control character or backslash in path")
            char = chr(int(pair, 16))
            high_bytes = high_bytes or pair[0] >= "8"
            out.append(char if char in _UNRESERVED else "%" + pair)
            i += 3
        else:
            out.append(c)
            i += 1
    decoded = "".join(out)
    if high_bytes:
        try:
            unquote_to_bytes(decoded).decode("utf-8")  # strict: overlong forms like %C0%AE fail
        except UnicodeDecodeError:
            raise BadRequest("percent-encoded bytes in the path are not UTF-8") from None
    segments = decoded.split("/")
    trailing = segments[-1] in ("", ".", "..")
    stack: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if stack:
                stack.pop()
        elif segment and segment != ".":
            if _hides_a_dot_segment(segment):
                raise BadRequest("a dot segment in disguise in the path")
            stack.append(segment)
    path = "/" + "/".join(stack)
    if trailing and stack:
        path += "/"
    return path


@dataclass(frozen=True, slots=True)
class Upstream:
    scheme: str
    host: str
    port: int
    base_path: str
    origin: str
    host_header: str
    # https: the route's TLS context (None: the pool's, with the system's CAs) and the name checked
    # against the certificate (None: `host`)
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    server_name: str | None = None
    # which idle connections may serve it: same address, same TLS context and name (a connection
    # made with one client certificate never carries a route meant to show another)
    pool_key: tuple[Any, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool_key", (self.scheme, self.host, self.port, self.server_name, self.ssl_context))


def parse_upstream(url: str, tls: Any = None, contexts: ClientContexts | None = None) -> Upstream:
    """`tls` (an `UpstreamTLSConfig`, for an https URL) takes its context from `contexts`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    host = parts.hostname or ""
    port = parts.port or default
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    return Upstream(
        scheme=scheme,
        host=host,
        port=port,
        base_path=parts.path.rstrip("/"),
        origin=f"{scheme}://{host_header}",
        host_header=host_header,
        ssl_context=(contexts or ClientContexts()).get(tls.files) if tls is not None and scheme == "https" else None,
        server_name=tls.server_name if tls is not None and scheme == "https" else None,
    )


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    path: str
    methods: frozenset[str]
    allow: str
    upstream: Upstream
    sandbox_upstream: Upstream | None
    strip_prefix: bool
    auth: frozenset[str]
    timeout: float                      # to the upstream's response head
    idle_timeout: float                 # between body chunks
    rate_limit_per_minute: int | None
    depth: int
    literal_prefix: int  # how many segments the path names before its first {param}
    test_keys_refused: bool             # no sandbox_upstream and test_keys "sandbox": a test key gets 403
    # What the gateway enforces and where it forwards: two routes with the same policy may take
    # each other's requests (see RouteTable.match)
    policy: tuple[Any, ...] = field(compare=False, repr=False, default=())
    config: Any = field(compare=False, repr=False, default=None)


def compile_route(cfg: Any, contexts: ClientContexts | None = None) -> Route:
    """A route from its config; a TLS file that cannot be used (since the config was checked) is a
    TLSError naming the route."""
    segments = [s for s in cfg.path.split("/") if s]
    contexts = contexts or ClientContexts()
    try:
        upstream = parse_upstream(cfg.upstream, cfg.upstream_tls, contexts)
        sandbox = (parse_upstream(cfg.sandbox_upstream, cfg.sandbox_upstream_tls, contexts)
                   if cfg.sandbox_upstream else None)
    except TLSError as exc:
        raise TLSError(f"route {cfg.name}: {exc}") from None
    policy = (
        frozenset(cfg.auth),
        upstream.origin, upstream.base_path, _tls_policy(cfg.upstream_tls),
        (sandbox.origin, sandbox.base_path, _tls_policy(cfg.sandbox_upstream_tls)) if sandbox else None,
        len(segments) if cfg.strip_prefix else None,  # what is cut from the forwarded path
        (cfg.name, cfg.rate_limit_per_minute) if cfg.rate_limit_per_minute else None,  # its own bucket
        frozenset(s for s in segments if s.startswith("{")),  # what a key's resources are checked on
        cfg.test_keys if sandbox is None else None,  # whether test keys reach its production upstream
    )
    return Route(
        name=cfg.name,
        path=cfg.path,
        methods=frozenset(cfg.methods),
        allow=", ".join(sorted(cfg.methods)),
        upstream=upstream,
        sandbox_upstream=sandbox,
        strip_prefix=cfg.strip_prefix,
        auth=frozenset(cfg.auth),
        timeout=float(cfg.timeout),
        idle_timeout=float(cfg.idle_timeout),
        rate_limit_per_minute=cfg.rate_limit_per_minute,
        depth=len(segments),
        literal_prefix=next((i for i, s in enumerate(segments) if s.startswith("{")), len(segments)),
        test_keys_refused=sandbox is None and cfg.test_keys == "sandbox",
        policy=policy,
        config=cfg,
    )


def _tls_policy(tls: Any) -> tuple[Any, ...] | None:
    """Who the gateway is to an upstream (its client certificate) and whom it trusts there."""
    return None if tls is None else (*tls.files, tls.server_name)


class Match(NamedTuple):
    route: Route
    params: dict[str, str]
    path: str

    def forward_path(self, upstream: Upstream) -> str:
        path = self.path
        if self.route.strip_prefix:
            segments = path.split("/")
            rest = "/".join(segments[self.route.depth + 1 :])
            path = "/" + rest if rest else ""
            if path == "" and self.path.endswith("/") and self.route.depth:
                path = "/"
        return (upstream.base_path + path) or "/"


class _Node:
    __slots__ = ("literal", "param", "param_name", "routes")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name: str | None = None
        self.routes: list[Route] = []


_MATCHED_MAX = 4096       # matches remembered per table
_MATCHED_PATH_MAX = 256   # longer paths are matched each time


class RouteTable:
    """Longest match by whole segments; literal beats `{param}`; 405 at the best path, never fallback."""

    def __init__(self, routes: Iterable[Any]) -> None:
        contexts = ClientContexts()  # made anew: a reload reads rotated certificates and CAs
        self.routes: tuple[Route, ...] = tuple(compile_route(r, contexts) for r in routes)
        self._root = _Node()
        self._folded = _Node()  # the same tree in lower case: how a case-insensitive upstream routes
        # with a capital in any route path, a lower-case request may name it too (`/api/visitors`)
        self._fold_always = any(route.path != route.path.lower() for route in self.routes)
        self._matched: dict[str, Match] = {}  # "METHOD path" -> its match (params read, never written)
        for root, fold in ((self._root, False), (self._folded, True)):
            for route in self.routes:
                node = root
                for segment in (s for s in route.path.split("/") if s):
                    if segment.startswith("{") and segment.endswith("}"):
                        if node.param is None:
                            node.param = _Node()
                            node.param_name = segment[1:-1]
                        node = node.param
                    else:
                        node = node.literal.setdefault(segment.lower() if fold else segment, _Node())
                node.routes.append(route)

    def _best(
        self, node: _Node, segments: Sequence[str], i: int, params: list[tuple[str, str]]
    ) -> tuple[int, _Node, list[tuple[str, str]]] | None:
        best = (i, node, list(params)) if node.routes else None
        if i < len(segments):
            segment = segments[i]
            child = node.literal.get(segment)
            if child is not None:
                found = self._best(child, segments, i + 1, params)
                if found is not None and (best is None or found[0] > best[0]):
                    best = found
            if node.param is not None and segment:
                params.append((node.param_name or "", segment))
                found = self._best(node.param, segments, i + 1, params)
                params.pop()
                if found is not None and (best is None or found[0] > best[0]):
                    best = found
        return best

    def match(self, method: str, path: str) -> Match:
        """The route for a normalised path, refused (400) when an upstream may read the path as one
        that another route covers under a different policy (`path_readings`: escapes decoded,
        `;params` dropped, cut at a decoded `?` or `#`, trailing dots, spaces and NTFS streams
        trimmed, a format suffix dropped, letter case ignored, Unicode folded and NFKC-normalised).
        Otherwise a protected route could be reached through a public one.

        The table never changes (a reload builds a new one), so a path matched once is matched
        from a dictionary after: most traffic repeats a few paths. Only short paths are kept, and
        the dictionary starts over when full, so made-up paths cannot grow it. Refusals are not kept."""
        key = method + " " + path
        found = self._matched.get(key)
        if found is None:
            found = self._checked(method, path)
            if len(path) <= _MATCHED_PATH_MAX:
                if len(self._matched) >= _MATCHED_MAX:
                    self._matched.clear()
                self._matched[key] = found
        return found

    def _checked(self, method: str, path: str) -> Match:
        found = self._match(self._root, method, path)
        fold = self._fold_always or path.lower() != path
        if not (fold or "%" in path or ";" in path or "." in path or ":" in path):
            return found  # most requests: there is no other reading
        others, unicode = readings(path, found.route.literal_prefix)
        others.discard(path)
        checks = [(self._root, r) for r in others]
        if fold or unicode:
            checks += [(self._folded, r.lower()) for r in others | {path}]
        policy = found.route.policy
        for root, reading in checks:
            try:
                other = self._match(root, method, reading).route
            except RouteNotFound:
                continue  # no route covers that reading: nothing of another route is reached
            except MethodNotAllowed:
                other = None
            if other is None or other.policy != policy:
                raise BadRequest("the path names another route as some upstreams read it (decoded, "
                                 "cut at ;, ? or #, trimmed, without a .suffix, or ignoring case)")
        return found

    def _match(self, root: _Node, method: str, path: str) -> Match:
        segments = path.split("/")[1:]
        if segments and segments[-1] == "":
            segments.pop()
        found = self._best(root, segments, 0, [])
        if found is None:
            raise RouteNotFound()
        _, node, params = found
        for route in node.routes:
            if method in route.methods:
                return Match(route, dict(params), path)
        allowed = sorted({m for r in node.routes for m in r.methods})
        raise MethodNotAllowed(allowed)
