"""Store lookups asked for in the same event-loop turn, sent as one query.

Every request with an unknown key misses the cache, and under a flood of random keys one trip to
the database per key costs more than the rest of the refusal. Misses that arrive together (the
requests of one loop turn) share a trip instead: one `IN (...)` query per turn, whatever the
number of keys, with no added wait beyond the end of the current turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Generic, TypeVar

from gateway.keystore.base import StoreError

V = TypeVar("V")

# What a batch query returns per key found: the value, or the error of decoding that one row
# (which fails that key's callers only, not the batch).
Fetch = Callable[[list[str]], Awaitable[Mapping[str, "V | Exception"]]]


def _own_copy(exc: Exception) -> Exception:
    """Each caller raises its own instance: tracebacks and context are per raise."""
    return StoreError(str(exc)) if isinstance(exc, StoreError) else exc


def _fail(waiters: dict[str, list[asyncio.Future[V | None]]], exc: Exception | None) -> None:
    for futures in waiters.values():
        for future in futures:
            if not future.done():
                if exc is None:
                    future.cancel()
                else:
                    future.set_exception(_own_copy(exc))


class BatchedLookup(Generic[V]):
    def __init__(self, fetch: Fetch[V], *, max_batch: int = 256) -> None:
        self._fetch = fetch
        self._max = max_batch
        self._pending: dict[str, list[asyncio.Future[V | None]]] = {}
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> V | None:
        loop = asyncio.get_running_loop()
        if self._flush_loop is not loop:
            if self._flush_loop is not None:
                self._pending = {}  # left by a loop that stopped before its flush ran
            self._flush_loop = loop
            loop.call_soon(self._flush)  # runs once every lookup of this turn has been asked for
        future: asyncio.Future[V | None] = loop.create_future()
        self._pending.setdefault(key, []).append(future)
        return await future

    def _flush(self) -> None:
        self._flush_loop = None
        pending, self._pending = self._pending, {}
        wanted = [key for key, futures in pending.items() if not all(f.done() for f in futures)]
        loop = asyncio.get_running_loop()
        for start in range(0, len(wanted), self._max):
            waiters = {key: pending[key] for key in wanted[start : start + self._max]}
            task = loop.create_task(self._run(waiters))
            self._running.add(task)
            # Whatever ends the task (even a cancel before its first step), no caller is left waiting.
            task.add_done_callback(partial(self._settle, waiters))

    def _settle(self, waiters: dict[str, list[asyncio.Future[V | None]]], task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        _fail(waiters, None if task.cancelled() else task.exception())  # type: ignore[arg-type]

    async def _run(self, waiters: dict[str, list[asyncio.Future[V | None]]]) -> None:
        found = await self._fetch(list(waiters))
        for key, futures in waiters.items():
            value = found.get(key)
            for future in futures:
                if future.done():  # a caller that went away meanwhile
                    continue
                if isinstance(value, Exception):
                    future.set_exception(_own_copy(value))
                else:
                    future.set_result(value)
