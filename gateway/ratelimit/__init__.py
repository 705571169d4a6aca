"""Sliding-window rate limits: the protocol, and a factory that fails loudly on a bad backend."""

from __future__ import annotations

from typing import Any

from gateway.ratelimit.base import BackendError, Decision, RateLimiter

__all__ = ["BackendError", "Decision", "RateLimiter", "create_rate_limiter"]


def create_rate_limiter(backend: str, **kwargs: Any) -> RateLimiter:
    if backend == "memory":
        from gateway.ratelimit.memory import MemoryRateLimiter

        return MemoryRateLimiter(**kwargs)
    if backend == "redis":
        from gateway.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(**kwargs)
    raise ValueError(f"ratelimit.backend: unknown backend {backend!r} (memory or redis)")
