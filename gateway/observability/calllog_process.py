"""The call log written by a process of its own (`call_log.writer: process`), supervised.

With the in-process writer, aiosqlite's thread binds each batch's ~14 parameters a row under
the GIL the event loop needs, and the loop itself makes the rows, the usage rollup and the
parameters (~2.6 µs a row). Here the loop makes one flat tuple a request and one `marshal` of
the batch (~0.6 µs a row) and writes it to a pipe; the writer process (`calllog_child.py`) does
the rest on its own interpreter, so on a machine with a core to spare the loop's CPU and its
GIL waits go down. Each worker has its own writer, as it had its own thread.

Batches keep their meaning: one at a time, each one transaction with its usage, and a batch
counts as written (the buffer lets go of it) only once the writer has confirmed its COMMIT, so
a flush, an admin read after it and a graceful stop wait for the disk as before. A writer that
dies (killed, out of memory), or answers nothing for `store.busy_timeout` and a minute more
(stopped, hung: it is killed), is logged and its batch is written in this process at once, as
the thread writer would; the next batch starts a new writer (after a pause that doubles, up to a
minute, while new ones die young, in-process meanwhile). A batch whose outcome was never heard
(its writer died, or the flush waiting on it was cancelled) is sent again with the next one, and
the writers' mark in the database (`call_log_writers`) tells whether it had been committed, so
no row is written twice and none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gateway
from gateway.keystore.base import StoreError
from gateway.observability.calllog_child import connect, write_batch
from gateway.observability.request_record import RequestRecord

log = logging.getLogger("gateway.records")

_READY_TIMEOUT = 60.0   # a loaded machine may take seconds to start an interpreter
_ANSWER_TIMEOUT = 60.0  # beyond busy_timeout: a writer this late with its answer is stuck (stopped, hung), and killed
_STOP_TIMEOUT = 30.0    # a writer still busy after its input ended this long is killed
_MAX_PAUSE = 60.0

Flat = tuple[Any, ...]


def flat(calls: Sequence[RequestRecord]) -> list[Flat]:
    """The records as the writer takes them: a `CallRow`'s fields, the latencies in seconds."""
    out: list[Flat] = []
    add = out.append
    for r in calls:
        i, up, done = r.identity, r.upstream_started, r.done
        if i is None:
            add((r.at, r.request_id, None, None, None, r.method, r.route, r.path, r.status, done - r.started,
                 None if up is None else done - up, r.rate_limited, r.client_ip, r.code))
        else:
            add((r.at, r.request_id, i.tenant_id, i.key_id, i.key_name, r.method, r.route, r.path, r.status,
                 done - r.started, None if up is None else done - up, r.rate_limited, r.client_ip, r.code))
    return out


class _Died(Exception):
    pass


class WriterProcess:
    def __init__(self, path: str, *, busy_timeout: float, executable: str = sys.executable,
                 answer_timeout: float = _ANSWER_TIMEOUT) -> None:
        self._path = path
        self._executable = executable
        self._busy_ms = int(busy_timeout * 1000)
        self._answer_timeout = busy_timeout + answer_timeout
        self._token = secrets.token_hex(12)  # this writer's mark in the database, across its processes
        self._seq = 0
        # Attempts whose rows may be committed though the buffer still holds them: (seq, count)
        self._prior: list[tuple[int, int]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[asyncio.subprocess.Process | None] | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._proven = False  # the live writer has confirmed a batch
        self._pause = 0.0
        self._not_before = 0.0
        self._here: sqlite3.Connection | None = None  # the in-process fallback's connection
        self.started = 0   # writer processes started
        self.deaths = 0    # and those that ended other than at a stop

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self) -> None:
        """Start the writer now, so that the first batch does not wait for an interpreter."""
        self._starting = asyncio.get_running_loop().create_task(self._spawn())

    async def write(self, records: list[Flat], *, keep: bool, usage: bool) -> None:
        """One batch, written once this returns; StoreError if it was not (the caller keeps it)."""
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait({self._inflight})  # a cancelled flush's batch ends first: one at a time
        task = self._inflight = asyncio.get_running_loop().create_task(self._deliver(records, keep, usage))
        await asyncio.shield(task)  # cancelled: the batch goes on, and stays in `_prior` until the next
        self._prior.clear()  # the caller lets go of these records now

    async def _deliver(self, records: list[Flat], keep: bool, usage: bool) -> None:
        proc = await self._process()
        if proc is not None:
            seq = self._next()
            body = marshal.dumps((seq, tuple(self._prior), keep, usage, records))
            self._prior.append((seq, len(records)))
            try:
                answer = await self._exchange(proc, body)
            except _Died:
                self._gone(proc)  # then written here, below
            else:
                if answer == "ok":
                    self._proven, self._pause = True, 0.0
                    return
                self._prior.pop()  # rolled back
                raise StoreError(f"call log write failed: {answer.removeprefix('error ')}")
        seq = self._next()
        if self._here is None:
            try:
                self._here = connect(self._path, self._busy_ms)
            except sqlite3.Error as exc:
                raise StoreError(f"call log write failed: {exc}") from None
        prior = tuple(self._prior)
        self._prior.append((seq, len(records)))
        try:
            await asyncio.to_thread(write_batch, self._here, self._token, seq, prior, keep, usage, records)
        except sqlite3.Error as exc:
            self._prior.pop()
            raise StoreError(f"call log write failed: {exc}") from None

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def _exchange(self, proc: asyncio.subprocess.Process, body: bytes) -> str:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            async with asyncio.timeout(self._answer_timeout):
                proc.stdin.write(len(body).to_bytes(4, "big") + body)
                await proc.stdin.drain()
                line = await proc.stdout.readline()
        except (ConnectionError, OSError, TimeoutError):
            raise _Died from None
        if not line.endswith(b"\n"):
            raise _Died
        return line[:-1].decode(errors="replace")

    async def _process(self) -> asyncio.subprocess.Process | None:
        """The live writer, a new one if it is time for one, or None (write in-process)."""
        if self._starting is not None:
            starting, self._starting = self._starting, None
            return await starting
        proc = self._proc
        if proc is not None and proc.returncode is None:
            return proc
        if proc is not None:
            self._gone(proc)
        if time.monotonic() < self._not_before:
            return None
        return await self._spawn()

    async def _spawn(self) -> asyncio.subprocess.Process | None:
        root = str(Path(gateway.__file__).resolve().parent.parent)  # the same gateway this process runs
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        try:
            proc = await asyncio.create_subprocess_exec(
                self._executable, "-m", "gateway.observability.calllog_child", self._path, str(self._busy_ms),
                self._token, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            )
        except OSError as exc:
            self._failed(f"cannot start: {exc}")
            return None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), _READY_TIMEOUT) if proc.stdout else b""
        except TimeoutError:
            line = b"no answer"
        except BaseException:
            proc.kill()  # never one left running unused
            raise
        if line != b"ready\n":
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            self._failed(line.decode(errors="replace").strip() or f"exited with {proc.returncode}")
            return None
        self.started += 1
        if self.started > 1:
            log.info("call log writer process started again", extra={"pid": proc.pid})
        self._proc, self._proven = proc, False
        return proc

    def _failed(self, why: str) -> None:
        self._pause = min(_MAX_PAUSE, max(1.0, self._pause * 2))
        self._not_before = time.monotonic() + self._pause
        log.warning("call log writer process unavailable; writing in-process meanwhile",
                    extra={"error": why, "retry_in": self._pause})

    def _gone(self, proc: asyncio.subprocess.Process) -> None:
        """A writer that ended unasked: logged once, the pause grown if it died young."""
        if self._proc is not proc:
            return
        self._proc = None
        self.deaths += 1
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # its pipe broke but it lives on: it gets no more batches
        if not self._proven:
            self._failed(f"exited before writing a batch (code {proc.returncode})")
        else:
            log.warning("call log writer process ended or stopped answering; its batch is written in-process, "
                        "the next starts a new one",
                        extra={"exit_code": proc.returncode})

    async def close(self) -> None:
        """After the last batch: the writer reads the end of its input and exits."""
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait({self._inflight})
        if self._starting is not None:
            await self._starting
            self._starting = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._here is not None:
            self._here.close()
            self._here = None
