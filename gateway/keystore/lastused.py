"""Per-key last-used times, kept in memory on the request path and written in batches.

The request path only overwrites one dict entry; a background task hands the batch to the store
every `store.last_used_flush_interval` seconds and once more on shutdown, so a graceful stop
loses nothing and a crash loses at most one interval. A failed write keeps the batch for the
next try (logged once per outage), merged so no later time is overwritten by an earlier one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from gateway.keystore.base import KeyStore
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.keystore")


class LastUsedRecorder:
    def __init__(
        self, store: KeyStore, *, interval: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        self._pending: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None  # set while writes fail: readiness reports it
        self.flush_failures = 0

    def touch(self, key_id: str) -> None:
        self._pending[key_id] = self._clock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        times = {k: dt.datetime.fromtimestamp(t, dt.UTC) for k, t in batch.items()}
        try:
            await self._store.record_last_used(times)
        except Exception as exc:
            self.flush_failures += 1
            for key_id, at in batch.items():
                if self._pending.get(key_id, 0.0) < at:
                    self._pending[key_id] = at
            if self.last_error is None:
                log.warning("cannot record last-used times; will retry", extra={"error": str(exc)})
            self.last_error = str(exc) or type(exc).__name__
            return
        if self.last_error is not None:
            log.info("last-used times recorded again")
            self.last_error = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
