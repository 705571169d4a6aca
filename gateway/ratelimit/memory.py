"""In-process sliding-log limiter: exact, O(1) amortised per decision, idle buckets reclaimed."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

from gateway.ratelimit.base import TOLERANCE, WINDOW, Decision, stricter

_SWEEP_EVERY = 256
_SWEEP_BATCH = 64


class MemoryRateLimiter:
    degraded = False  # decides in this process: never without its limits

    def __init__(self, *, clock: Callable[[], float] = time.time, window: float = WINDOW) -> None:
        self._clock = clock
        self._window = window
        self._buckets: dict[str, deque[float]] = {}
        self._calls = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _decide(self, log: deque[float] | None, limit: int, now: float) -> Decision:
        horizon = now - self._window + TOLERANCE
        if log:
            while log and log[0] <= horizon:
                log.popleft()
        if not log:
            return Decision(True, limit, limit - 1, now + self._window, 0)
        used = len(log)
        if used < limit:
            return Decision(True, limit, limit - used - 1, log[0] + self._window, 0)
        reset = log[used - limit] + self._window
        return Decision(False, limit, 0, reset, max(1, math.ceil(reset - now - TOLERANCE)))

    def hit_sync(self, checks: Sequence[tuple[str, int]]) -> Decision:
        now = self._clock()
        buckets = self._buckets
        decision: Decision | None = None
        for bucket, limit in checks:
            this = self._decide(buckets.get(bucket), limit, now)
            decision = this if decision is None else stricter(decision, this)
        assert decision is not None, "no bucket to check"
        if decision.allowed:
            for bucket, _ in checks:
                log = buckets.get(bucket)
                if log is None:
                    buckets[bucket] = deque((now,))
                else:
                    log.append(now)
        self._calls += 1
        if self._calls >= _SWEEP_EVERY:
            self._calls = 0
            self._sweep(now)
        return decision

    def _sweep(self, now: float) -> None:
        """Look at a few of the least recently created buckets; drop idle ones, requeue the rest."""
        horizon = now - self._window
        buckets = self._buckets
        for bucket in list(islice_keys(buckets, _SWEEP_BATCH)):
            log = buckets.pop(bucket)
            if log and log[-1] > horizon:
                buckets[bucket] = log

    async def hit(self, checks: Sequence[tuple[str, int]]) -> Decision:
        return self.hit_sync(checks)

    async def refund(self, bucket: str) -> None:
        """Forget the bucket's newest admission (see `Refundable` in base.py)."""
        log = self._buckets.get(bucket)
        if log:
            log.pop()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._buckets.clear()


def islice_keys(mapping: dict[str, deque[float]], n: int) -> list[str]:
    out = []
    for key in mapping:
        out.append(key)
        if len(out) >= n:
            break
    return out
