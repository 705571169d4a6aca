"""`server.workers: N`: N processes serving the same sockets (SO_REUSEPORT), one supervisor.

Each worker is a whole gateway process (spawned, not forked, so no event loop or connection is
shared by accident); the kernel spreads connections across them. Limits stay exact because the
config requires the Redis limiter when N > 1. Metrics go through prometheus-client's multiprocess
files, so whichever worker answers `/metrics` reports the whole gateway. The supervisor forwards
SIGINT/SIGTERM, and SIGHUP (each worker reloads its config); if a worker dies on its own it stops
the others and exits with that worker's status.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from multiprocessing.connection import wait
from types import FrameType


def _worker(config_path: str) -> None:
    from gateway import cli

    raise SystemExit(cli.run_one(config_path))


def run_workers(config_path: str, count: int) -> int:
    # Every worker writes its metrics to files here; any worker answering /metrics sums them all.
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _supervise(config_path, count)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(config_path: str, count: int) -> int:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(config_path,), name=f"gateway-worker-{i}") for i in range(count)]
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    def reload(signum: int, frame: FrameType | None) -> None:
        """SIGHUP to the supervisor (the pid an operator sees) reloads every worker, each on its own."""
        for proc in procs:
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGHUP)

    signal.signal(signal.SIGHUP, reload)
    for proc in procs:
        proc.start()
    failed = 0
    alive = list(procs)
    while alive:
        for sentinel in wait([p.sentinel for p in alive]):
            proc = next(p for p in alive if p.sentinel == sentinel)
            proc.join()
            alive.remove(proc)
            _forget_metrics(proc.pid)
            if proc.exitcode != 0 and not stopping:
                failed = failed or (proc.exitcode if proc.exitcode and proc.exitcode > 0 else 1)
                print(f"gateway: {proc.name} exited with status {proc.exitcode}; stopping", file=sys.stderr)
                forward(signal.SIGTERM, None)
            elif proc.exitcode != 0:
                failed = failed or 1
    return failed


def _forget_metrics(pid: int | None) -> None:
    """A dead worker's live gauges (in flight, queue depths) must not count any more."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
