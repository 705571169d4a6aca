"""Background tasks stopped the same way everywhere: cancel, then wait until they have ended.

A cancellation can be swallowed by library code caught mid-operation (redis-py's connection
setup is one such place), leaving the task running on: so the cancel is repeated until the task
has really ended, and shutdown cannot hang on a task that ignored one.
"""

from __future__ import annotations

import asyncio
from typing import Any

_RETRY = 0.5


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_RETRY)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error  # a task that failed on its way out: the caller hears of it, as with `await task`
