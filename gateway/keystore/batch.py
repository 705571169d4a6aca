"""Store lookups asked for in the same event-loop turn, sent as one query.

Every request with an unknown key misses the cache, and under a flood of random keys one trip to
the database per key costs more than the rest of the refusal. Misses that arrive together (the
requests of one loop turn) share a trip instead: one `IN (...)` query per turn, whatever the
number of keys, with no added wait beyond the end of the current turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")

Fetch = Callable[[list[str]], Awaitable[Mapping[str, V]]]


class BatchedLookup(Generic[V]):
    def __init__(self, fetch: Fetch[V], *, max_batch: int = 256) -> None:
        self._fetch = fetch
        self._max = max_batch
        self._pending: dict[str, list[asyncio.Future[V | None]]] = {}
        self._scheduled = False
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._pending.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # runs once every lookup of this turn has been asked for
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        keys = list(pending)
        loop = asyncio.get_running_loop()
        for start in range(0, len(keys), self._max):
            chunk = {key: pending[key] for key in keys[start : start + self._max]}
            task = loop.create_task(self._run(chunk))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, waiters: dict[str, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(list(waiters))
        except Exception as exc:  # the store's error reaches every caller of this batch
            for futures in waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        except BaseException:
            for futures in waiters.values():
                for future in futures:
                    future.cancel()
            raise
        for key, futures in waiters.items():
            value = found.get(key)
            for future in futures:
                if not future.done():  # a caller that went away meanwhile
                    future.set_result(value)
