"""Flow control, written once for both sides of the engine: the client connection
(`connection.py`) and the upstream connection (`upstream.py`), as aiohttp's `base_protocol.py`
serves its client and server protocols and uvicorn's `flow_control.py` its HTTP protocols.

Writing: the transport calls `pause_writing` when its buffer passes the high-water mark and
`resume_writing` once it has drained; a writer that must not pile up more waits in `_writable`
(each side wraps that in its own `drain`: the client side bounds the wait by `send_timeout`, the
upstream side reports the exchange's error). Reading: `_pause_reading` and `_resume_reading`
stop and restart the transport's reads and remember which, so each side decides only when.
"""

from __future__ import annotations

import asyncio


class FlowControl(asyncio.Protocol):
    __slots__ = ("_loop", "transport", "_write_paused", "_drain_waiter", "_read_paused")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._read_paused = False

    # -- writing ------------------------------------------------------------------------------

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._wake_writer():
            self._writing_resumed()

    def _writing_resumed(self) -> None:
        """Writing may go on and no writer was waiting: what a side does then (nothing here)."""

    async def _writable(self) -> None:
        """Wait for `resume_writing`, or for the end of the connection (`_wake_writer`)."""
        waiter = self._drain_waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None

    def _wake_writer(self, error: BaseException | None = None) -> bool:
        """Release the writer waiting in `_writable`, raising `error` in it if given (the
        connection is gone); whether one was waiting."""
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            return False
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
        return True

    # -- reading ------------------------------------------------------------------------------

    def _pause_reading(self) -> None:
        transport = self.transport
        if not self._read_paused and transport is not None:
            self._read_paused = True
            transport.pause_reading()

    def _resume_reading(self) -> None:
        transport = self.transport
        if self._read_paused and transport is not None:
            self._read_paused = False
            transport.resume_reading()
