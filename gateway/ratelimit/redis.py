"""Redis sliding-log limiter: exact across workers and instances, one atomic script per decision.

Each bucket is a sorted set of admission times (microseconds, Redis server time, so gateway
clocks never disagree). The script checks every bucket of the request, and records the request
in all of them only if all admit, so a route refusal never spends plan quota. Keys expire after
a window of inactivity. While Redis is unreachable, `on_backend_error` decides (allow or deny);
the outage and the recovery are logged once each, and the client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence

from gateway.ratelimit.base import WINDOW, BackendError, Decision, strictest

log = logging.getLogger("gateway.ratelimit")

# KEYS: buckets. ARGV[1] = window in microseconds, ARGV[2..] = limits, same order as KEYS.
# Returns the server time and, per bucket, {allowed, used_after, oldest_relevant_us}.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local horizon = now - window
local ok = 1
local out = {now}
local used = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon)
  used[i] = redis.call('ZCARD', key)
  if used[i] >= tonumber(ARGV[i + 1]) then ok = 0 end
end
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  local oldest = now
  if ok == 1 then
    local seq = redis.call('INCR', key .. ':seq')
    redis.call('PEXPIRE', key .. ':seq', math.floor(window / 1000) + 1000)
    redis.call('ZADD', key, now, now .. '-' .. seq)
    redis.call('PEXPIRE', key, math.floor(window / 1000) + 1000)
    used[i] = used[i] + 1
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then oldest = tonumber(first[2]) end
  elseif used[i] >= limit then
    local nth = redis.call('ZRANGE', key, used[i] - limit, used[i] - limit, 'WITHSCORES')
    if nth[2] then oldest = tonumber(nth[2]) end
  else
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then oldest = tonumber(first[2]) end
  end
  table.insert(out, ok)
  table.insert(out, used[i])
  table.insert(out, oldest)
end
return out
"""

# KEYS[1]: a bucket. Forgets its newest admission (`Refundable` in base.py).
REFUND = """
local newest = redis.call('ZRANGE', KEYS[1], -1, -1)
if newest[1] then redis.call('ZREM', KEYS[1], newest[1]) end
return 0
"""


class RedisRateLimiter:
    script = SCRIPT

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gw:rl:",
        on_backend_error: str = "allow",
        window: float = WINDOW,
        on_error_callback: Callable[[Exception], None] | None = None,
    ) -> None:
        import redis.asyncio as aioredis

        # A bounded pool that makes callers wait briefly for a connection: under a burst,
        # queueing on 64 connections beats opening hundreds (and hitting the pool's limit).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=0.5,
            socket_connect_timeout=0.25,
            socket_timeout=0.5,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._errors: tuple[type[Exception], ...] = (aioredis.RedisError, OSError, TimeoutError)
        self._prefix = prefix
        self._allow_on_error = on_backend_error == "allow"
        self._window = window
        self._window_us = int(window * 1_000_000)
        self._on_error = on_error_callback
        self._sha: str | None = None
        self._down = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch: list[tuple[list[str], Sequence[int | str], asyncio.Future[list[int]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def _eval(self, keys: list[str], args: Sequence[int | str]) -> list[int]:
        """One decision; decisions asked for in the same loop iteration share one pipeline.

        Under load many requests wait on the limiter at once: sending their scripts in one
        round trip, without a pool checkout and a read per script, divides redis-py's per-call
        cost by the batch size."""
        return await self._submit(keys, args)

    def _submit(self, keys: list[str], args: Sequence[int | str]) -> asyncio.Future[list[int]]:
        """The script's reply to come, sent with the others of this loop iteration."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._batch.append((keys, args, future))
        if len(self._batch) == 1:
            self._loop.call_soon(self._send_batch)
        return future

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        assert self._loop is not None
        task = self._loop.create_task(self._run_batch(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run_batch(self, batch: list[tuple[list[str], Sequence[int | str], asyncio.Future[list[int]]]]) -> None:
        from redis.exceptions import NoScriptError

        try:
            if self._sha is None:
                self._sha = await self._redis.script_load(self.script)
            for attempt in (1, 2):
                pipe = self._redis.pipeline(transaction=False)
                for keys, args, _ in batch:
                    pipe.evalsha(self._sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
                if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                    self._sha = await self._redis.script_load(self.script)  # Redis restarted or flushed scripts
                    continue
                break
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # the request went away meanwhile
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    @property
    def degraded(self) -> bool:
        """Requests are admitted without limits: the backend did not answer the last time it was
        asked (a decision or a readiness ping) and `on_backend_error` is `allow`."""
        return self._down and self._allow_on_error

    def _went_down(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "rate-limit backend unreachable; %s requests until it is back",
                "allowing" if self._allow_on_error else "refusing",
                extra={"error": str(exc) or type(exc).__name__},
            )

    def _came_back(self) -> None:
        if self._down:
            self._down = False
            log.info("rate-limit backend reachable again")

    def _fallback(self, checks: Sequence[tuple[str, int]], exc: Exception) -> Decision:
        if self._on_error is not None:
            self._on_error(exc)
        self._went_down(exc)
        limit = min(limit for _, limit in checks)
        now = time.time()
        if self._allow_on_error:
            return Decision(True, limit, limit, now + self._window, 0)
        return Decision(False, limit, 0, now + 1, 1)

    async def hit(self, checks: Sequence[tuple[str, int]]) -> Decision:
        keys = [self._prefix + bucket for bucket, _ in checks]
        limits = [limit for _, limit in checks]
        try:
            raw = await self._eval(keys, [self._window_us, *limits])
        except self._errors as exc:
            return self._fallback(checks, exc)
        if self._down:
            self._came_back()
        now_us = int(raw[0])
        decisions = []
        for i, limit in enumerate(limits):
            ok, used, oldest = int(raw[1 + 3 * i]), int(raw[2 + 3 * i]), int(raw[3 + 3 * i])
            reset = (oldest + self._window_us) / 1_000_000
            if ok:
                decisions.append(Decision(True, limit, max(0, limit - used), reset, 0))
            else:
                decisions.append(self._not_admitted(limit, used, oldest, now_us, reset))
        return strictest(decisions)

    async def refund(self, bucket: str) -> None:
        """Unreachable Redis keeps the admission counted: the safe side for the counts it serves."""
        try:
            await self._redis.eval(REFUND, 1, self._prefix + bucket)
        except self._errors as exc:
            if self._on_error is not None:
                self._on_error(exc)
            self._went_down(exc)

    def _not_admitted(self, limit: int, used: int, oldest: int, now_us: int, reset: float) -> Decision:
        """A bucket's decision for a request the script did not admit: refused where the bucket is
        full (retry once its oldest entry leaves the window), else admissible here but refused by
        another bucket of the request (`leased.py` decides its buckets alike)."""
        if used >= limit:
            retry = max(1, math.ceil((oldest + self._window_us - now_us) / 1_000_000))
            return Decision(False, limit, 0, reset, retry)
        return Decision(True, limit, max(0, limit - used - 1), reset, 0)

    async def ping(self) -> None:
        """Readiness: also what `degraded` reports until the next decision says otherwise."""
        try:
            await self._redis.ping()
        except self._errors as exc:
            self._went_down(exc)
            raise BackendError(f"redis unreachable: {exc}") from None
        self._came_back()

    async def close(self) -> None:
        if self._sending:
            await asyncio.wait(self._sending, timeout=2.0)
        await self._redis.aclose(close_connection_pool=True)
