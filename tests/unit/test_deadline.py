"""A deadline moved on every request still fires once, at the latest time it was set to, and
never after it was disarmed."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.http.deadline import Deadline


async def test_rearming_later_fires_once_at_the_last_deadline() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    done = loop.create_future()
    deadline = Deadline(loop, lambda: (fired.append(loop.time()), done.set_result(None)))
    start = loop.time()
    deadline.arm(0.5)
    for _ in range(3):  # each re-arm moves the deadline on; no new timer handle is needed
        await asyncio.sleep(0.02)  # far below the deadline: a loaded machine's pause does not reach it
        deadline.arm(0.5)
    last = loop.time() + 0.5 - 0.001
    await asyncio.wait_for(done, 5)
    assert len(fired) == 1 and fired[0] >= last and fired[0] - start >= 0.56


async def test_an_earlier_deadline_replaces_a_later_one() -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    deadline = Deadline(loop, lambda: done.set_result(loop.time()))
    deadline.arm(60)
    start = loop.time()
    deadline.arm(0.02)
    assert await asyncio.wait_for(done, 2) - start < 30


async def test_disarmed_never_fires() -> None:
    loop = asyncio.get_running_loop()
    fired: list[bool] = []
    deadline = Deadline(loop, lambda: fired.append(True))
    deadline.arm(0.01)
    deadline.disarm()
    waiter = loop.create_future()
    probe = Deadline(loop, lambda: waiter.set_result(None))
    probe.arm(0.05)  # a later deadline on the same loop: by the time it fires, the first was due
    await asyncio.wait_for(waiter, 2)
    assert fired == []


def test_a_handle_uvloop_runs_early_fires_instead_of_spinning() -> None:
    """uvloop runs timers on whole milliseconds: a deadline that is not one must not be
    rescheduled again and again for the fraction of a millisecond left."""
    import uvloop

    schedules = 0

    class Counted(asyncio.AbstractEventLoop):
        """The running loop's clock and timers, counting the handles scheduled: injected, as a
        compiled Deadline cannot be subclassed or patched."""

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self._loop = loop

        def time(self) -> float:
            return self._loop.time()

        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
            nonlocal schedules
            schedules += 1
            return self._loop.call_at(when, callback, *args, context=context)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = loop.create_future()
        deadline = Deadline(Counted(loop), lambda: fired.set_result(None))
        deadline.arm(0.05)
        for _ in range(3):
            await asyncio.sleep(0.0137)
            deadline.arm(0.0371)  # later than the handle, and not on a millisecond
        await asyncio.wait_for(fired, 2)

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert schedules <= 4
