"""How much a key may do: the `ratelimit` section and the `plans` a tenant can be on."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Literal

from gateway.config.fields import (
    REDIS_URL,
    Int,
    Number,
    OneOf,
)
from gateway.config.keytypes import SECTION, Flag, Text


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
