"""`gateway run` as a child process whose stderr (JSON log lines) is read all the time.

A child that logs into a pipe nobody reads blocks once the pipe's 64 KB are full (200 access-log
lines are enough), and a gateway blocked on stderr answers nothing: so the log is always drained,
and tests wait on log lines through `wait_log`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


class GatewayProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._eof = False
        self._signalled = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"msg": line.decode(errors="replace").rstrip()}
            self.lines.append(entry if isinstance(entry, dict) else {"msg": str(entry)})
            self._changed.set()
        self._eof = True
        self._changed.set()

    async def wait_log(self, prefix: str, count: int = 1, timeout: float = 120) -> None:
        """Waits for the log line; the deadline only turns a hang into a failure (a loaded 2-core
        machine took over 30 s to start four workers), it paces nothing."""
        async def until() -> None:
            while sum(str(e.get("msg", "")).startswith(prefix) for e in self.lines) < count:
                if self._eof:
                    raise AssertionError(f"gateway exited before logging {prefix!r}: {self.lines[-8:]}")
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {prefix!r} (x{count}) within {timeout} s: {self.lines[-8:]}") from None

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._signalled = True
        self.proc.send_signal(signum)

    async def stop(self, timeout: float = 120) -> int:
        """SIGTERM once (a second one after the gateway removed its handlers would kill it)."""
        if self.proc.returncode is None and not self._signalled:
            self.signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code

    async def kill(self) -> None:
        """SIGKILL the whole process group: workers would otherwise outlive their parent and keep
        the log pipe open, and the reader would wait for its end for ever."""
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # any worker left behind
            except ProcessLookupError:
                pass
        await self._reader


async def start_gateway_process(config: Path, cwd: Path, env: dict[str, str], *, workers: int = 1) -> GatewayProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config), cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so kill() reaches the workers too
    )
    running = GatewayProcess(proc)
    try:
        await running.wait_log("gateway started", count=workers)
    except BaseException:
        await running.kill()
        raise
    return running


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def writers(pid: int) -> set[int]:
    """The call-log writer processes below a gateway (its own, or its workers')."""
    found: set[int] = set()
    for child in children(pid):
        if b"calllog_child" in Path(f"/proc/{child}/cmdline").read_bytes():
            found.add(child)
        else:
            found |= writers(child)
    return found


async def ended(pid: int, timeout: float = 30) -> None:
    """Wait for a process that is not ours to end (a pidfd turns readable when it does)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, done.set)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
