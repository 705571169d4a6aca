"""The `RateLimiter` protocol and its decision, shared by every backend.

Algorithm (both backends): an exact sliding log. Each bucket keeps the times of the requests it
admitted in the last 60 s, at most `limit` of them. A request is admitted when fewer than
`limit` of those lie in (now - 60 s, now]; refused requests are not recorded.

- Exactness: no 60 s span ever contains more than `limit` admitted requests, and a client
  sending exactly `limit` per 60 s is never refused early (the oldest entry leaves the window
  exactly 60 s after it was admitted). Float rounding is absorbed by a 1 µs tolerance.
- Memory: O(limit) per active bucket (8-byte floats in a deque: about 16 KB for a 2,000/min
  plan at full use), reclaimed once a bucket has been idle for a window. A weighted
  sliding-window counter would be O(1) but can admit up to twice the limit in a span that
  straddles two windows, which the contract does not allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

WINDOW = 60.0
TOLERANCE = 1e-6


class Decision(NamedTuple):
    """One limiter answer; a tuple because one is built per request and per bucket."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float      # Unix seconds: when one more request will be allowed
    retry_after: int     # whole seconds >= 1 when refused, else 0


class BackendError(Exception):
    """The shared limiter backend cannot be reached."""


class RateLimiter(Protocol):
    """Counts one request against each (bucket, limit per minute) and answers for the strictest.

    A backend that decides in memory may also offer `hit_sync(checks) -> Decision`: the guard
    then calls it without awaiting, and a request with a cached identity makes no coroutine. A
    remote backend may offer `hit_local(checks) -> Decision | None`: the decisions it can make in
    the worker (leased permits, leased.py), None for those only `hit` can make."""

    async def hit(self, checks: Sequence[tuple[str, int]]) -> Decision: ...
    async def ping(self) -> None: ...
    @property
    def degraded(self) -> bool:
        """Requests are being admitted without limits (a shared backend is down, and configured
        to allow): readiness and `gateway_ratelimit_degraded` report it."""
    async def close(self) -> None: ...


class Refundable(RateLimiter, Protocol):
    """A limiter that can refund an admission: for a caller that counts only some outcomes (the
    portal's failed sign-ins per account) and so takes a place before the outcome is known (two
    attempts at once cannot both slip under the limit) and refunds it when the outcome does not
    count. The newest admission goes, which is this one's or, when several were in flight, one
    taken a moment later: the count is exact, a time in the log may move by that moment.
    The memory and per-request Redis backends offer it; leased permits (leased.py) do not."""

    async def refund(self, bucket: str) -> None: ...


def stricter(a: Decision, b: Decision) -> Decision:
    """The refusing decision (the longer wait if both refuse), else the one with fewer left."""
    if a.allowed != b.allowed:
        return b if a.allowed else a
    if not a.allowed:
        return a if a.retry_after >= b.retry_after else b
    return a if a.remaining <= b.remaining else b


def strictest(decisions: Sequence[Decision]) -> Decision:
    decision = decisions[0]
    for other in decisions[1:]:
        decision = stricter(decision, other)
    return decision
