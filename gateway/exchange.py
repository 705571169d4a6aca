"""What the pipeline's parts hand each other: the record of one request and the seams between them.

The proxy pipeline (`proxy/`) fills a `RequestScope` as a request moves through it; access control
(`access/`) is a `Guard` and its token `Endpoint`s, recording (`observability/`) an `Observer`
that reads the finished scope. Each of them imports this module and none of the others, so
access and recording do not depend on the pipeline, nor the pipeline on them: the app wires
them together. This module imports nothing of the gateway at run time (tests/unit/test_layers.py);
the engine's and the route table's types appear in annotations only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.http.messages import Request, Response
    from gateway.routing import Match, Route, Upstream


@dataclass(frozen=True, slots=True)
class PathRule:
    """One permission of a `custom` key: methods on a path, or on a subtree (`/path/*`)."""

    methods: frozenset[str]     # empty = any method
    path: str                   # exact path, or prefix when `subtree`
    subtree: bool

    def allows(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.subtree:
            return path == self.path or path.startswith(self.path + "/") or self.path == ""
        return path == self.path


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a credential stands for, flattened once per cache fill (`access/identity.py`) into
    what the hot path reads, and what the records say of the caller."""

    key_id: str
    tenant_id: str
    user_id: str | None
    key_name: str
    environment: str
    scope: str
    rules: tuple[PathRule, ...]
    resources: Mapping[str, frozenset[str]]
    limit_per_minute: int
    expires_at: float | None
    revoked: bool
    tenant_disabled: bool
    user_disabled: bool
    api_disabled: bool          # the operator's gate: no key of the tenant may be used
    write_disabled: bool        # the operator's gate: only safe methods for the tenant's keys
    read_only: bool             # the scope, or the owner's role, allows only safe methods
    blocked: bool               # any of the first three: one check per request finds them all
    writes_refused: bool        # write_disabled or read_only: one check per unsafe request
    bucket: str                 # rate-limit bucket of the key
    headers: tuple[tuple[str, str], ...]
    tenant_name: str = ""
    plan: str = ""
    sunset_from: float = float("inf")   # from then on (expires_at less keys.expiring_soon_days)
    sunset: tuple[tuple[str, str], ...] = ()   # ... answers carry these: Sunset, and Link to the portal
    canary: bool = False        # planted to be found: refused as an unknown key, and reported


@dataclass(slots=True)
class RequestScope:
    """Everything one request learns on its way, read at the end by metrics and the logs."""

    request_id: str
    started: float                          # time.perf_counter() when the request was taken up
    method: str = ""
    path: str = ""                          # normalised, without the query
    client_ip: str = ""
    route: Route | None = None              # matched
    identity: Identity | None = None        # the credential's live identity, once checked
    auth_method: str | None = None          # "api_key", "basic" or "jwt", once a credential was read
    rate_limited: bool = False
    status: int = 0
    error_code: str | None = None           # the refusal's contract code, or what cut an answer's body
    truncated: bool = False                 # the answer's head had left when its body was cut
    upstream_started: float | None = None   # time.perf_counter() when the upstream exchange began
    upstream_headers: list[tuple[str, str]] = field(default_factory=list)   # added to the forwarded request
    response_headers: list[tuple[str, str]] = field(default_factory=list)   # added to the answer


class Guard(Protocol):
    """Decides whether a matched request may pass, and to which upstream it goes.

    Raises a `GatewayError` to refuse; adds identity headers to `scope.upstream_headers` and
    rate-limit headers to `scope.response_headers` on the way.
    """

    def __call__(self, request: Request, scope: RequestScope, match: Match, /) -> Upstream | Awaitable[Upstream]:
        """The upstream at once when nothing needs awaiting; else an awaitable of it."""


class Endpoint(Protocol):
    """One of the gateway's own answers on the proxy listener (the token exchange, the JWKS)."""

    def __call__(self, request: Request, scope: RequestScope, /) -> Awaitable[Response]: ...


class Observer(Protocol):
    """Told when a request starts and when it ends (whatever the outcome), to record it."""

    def started(self) -> None: ...
    def finished(self, scope: RequestScope) -> None: ...


class FailedCredentials(Protocol):
    """Counts wrong credentials per client address; past a budget, how long the 401 waits."""

    def failed(self, client_ip: str) -> float: ...


class LeakedKeys(Protocol):
    """This gateway's keys seen where they leak: found by string work alone (no lookup), then
    marked exposed before the request is refused, so the refusal means it is done."""

    def in_query(self, query: str, /) -> list[str]:
        """The well-formed keys anywhere in a query string (without its `?`)."""

    def in_request(self, request: Request, /) -> list[str]:
        """The well-formed keys anywhere in a request's headers and query string."""

    def report(self, secrets: list[str], reason: str, request: Request, scope: RequestScope, /) -> Awaitable[None]:
        """Mark them exposed (`reason`: query_string or plain_http); a canary key among them
        raises its alarm instead. Never raises."""
