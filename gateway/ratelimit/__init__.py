"""Sliding-window rate limits: the protocol, and a factory that fails loudly on a bad backend.

A backend is one module implementing `RateLimiter` (base.py), a branch in `create_rate_limiter`
and one in `limiter_for` (its settings from the `ratelimit` section), and a place in the
conformance suite (tests/ratelimit/test_limiters.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.config import RateLimitConfig
from gateway.ratelimit.base import BackendError, Decision, RateLimiter

__all__ = ["BackendError", "Decision", "RateLimiter", "create_rate_limiter", "limiter_for"]


def limiter_for(
    cfg: RateLimitConfig, *, clock: Callable[[], float] = time.time,
    on_backend_error: Callable[[BaseException], None] | None = None,
) -> RateLimiter:
    """The limiter the `ratelimit` section names; `on_backend_error` hears of each failure of a
    remote backend (the metric), whatever `on_backend_error` in the section decides for the request."""
    if cfg.backend == "redis":
        return create_rate_limiter("redis-leased" if cfg.redis_leases else "redis", url=cfg.redis_url, prefix=cfg.redis_prefix,
                                   on_backend_error=cfg.on_backend_error, on_error_callback=on_backend_error)
    return create_rate_limiter(cfg.backend, clock=clock)


def create_rate_limiter(backend: str, **kwargs: Any) -> RateLimiter:
    if backend == "memory":
        from gateway.ratelimit.memory import MemoryRateLimiter

        return MemoryRateLimiter(**kwargs)
    if backend == "redis":
        from gateway.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(**kwargs)
    if backend == "redis-leased":
        from gateway.ratelimit.leased import LeasedRedisRateLimiter

        return LeasedRedisRateLimiter(**kwargs)
    raise ValueError(f"ratelimit.backend: unknown backend {backend!r} (memory or redis)")
