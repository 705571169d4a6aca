"""A bounded in-memory buffer flushed in batches, so the request path never waits on disk.

Entries are appended synchronously; a background task writes them every `interval` seconds, when
a batch fills, or when woken; `stop()` writes what is left. A failed write keeps the entries for
the next try (logged once per outage). Only when the buffer is full are new entries dropped, and
each dropped entry is counted, never lost silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("gateway.records")


class BufferedWriter(Generic[T]):
    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], Awaitable[None]],
        *,
        interval: float,
        capacity: int,
        batch: int = 500,
    ) -> None:
        self.name = name
        self._write = write
        self._interval = interval
        self._capacity = capacity
        self._batch = batch
        self._queue: deque[T] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None  # set while writes fail: readiness reports it
        self._stopping = False
        self.dropped = 0
        self.flush_failures = 0
        self.written = 0

    def __len__(self) -> int:
        return len(self._queue)

    def append(self, entry: T) -> None:
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append(entry)
        if len(self._queue) >= self._batch:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def flush(self) -> bool:
        """Write everything queued now; False if the store refused (entries are kept)."""
        async with self._lock:
            while self._queue:
                batch = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
                try:
                    await self._write(batch)
                except Exception as exc:
                    self.flush_failures += 1
                    if self.last_error is None:
                        log.warning("cannot write %s; keeping entries and retrying", self.name, extra={"error": str(exc)})
                    self.last_error = str(exc) or type(exc).__name__
                    return False
                for _ in batch:
                    self._queue.popleft()
                self.written += len(batch)
                if self.last_error is not None:
                    log.info("writing %s again", self.name)
                    self.last_error = None
        return True

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Let a write in progress finish (never cancel it: it may commit), then write the rest."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
