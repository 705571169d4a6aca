"""The state of one request as it moves through the pipeline, and the seam for access control."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.http.messages import Request

from gateway.routing import Match, Route, Upstream

if TYPE_CHECKING:
    from gateway.keystore.models import Principal


@dataclass(slots=True)
class RequestScope:
    """Everything one request learns on its way, read at the end by metrics and the call log."""

    request_id: str
    started: float
    method: str = ""
    path: str = ""
    client_ip: str = ""
    route: Route | None = None
    principal: Principal | None = None
    auth_method: str | None = None
    rate_limited: bool = False
    status: int = 0
    error_code: str | None = None
    upstream_started: float | None = None
    upstream_headers: list[tuple[str, str]] = field(default_factory=list)
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Guard(Protocol):
    """Decides whether a matched request may pass, and to which upstream it goes.

    Raises a `GatewayError` to refuse; adds identity headers to `scope.upstream_headers` and
    rate-limit headers to `scope.response_headers` on the way.
    """

    def __call__(self, request: Request, scope: RequestScope, match: Match) -> Upstream | Awaitable[Upstream]:
        """The upstream at once when nothing needs awaiting; else an awaitable of it."""
