"""The call log's two writers, thread and process, on the same batches (run by hand).

    python bench/micro/calllog_writer.py                  # batches of 120 and 1,000 rows, 4 rounds
    taskset -c 1 python bench/micro/calllog_writer.py     # everything on one CPU, as bench/run pins a gateway
    python bench/micro/calllog_writer.py --sizes 40 400 --rounds 6

A real `Recorder` on a temporary SQLite file is given batches of requests (three keys of two
tenants, a third without a key) and flushed, as the gateway's buffer does every
`call_log.flush_interval` (120 rows is 0.2 s at 600 req/s, 1,000 rows at 5,000 req/s). Printed
per row, medians of interleaved rounds: the CPU of the event loop's thread (what every request
waits behind), of the whole gateway process (with aiosqlite's thread), of the writer process,
and the sum. Nothing else runs in the process, so unlike `bench/ab.py` the figures are not
buried in the noise of a request's ~100 µs on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.config import CallLogConfig  # noqa: E402
from gateway.exchange import Identity  # noqa: E402
from gateway.observability.calllog_process import WriterProcess  # noqa: E402
from gateway.observability.recorder import Recorder  # noqa: E402
from gateway.observability.records_sqlite import SQLiteRecordStore  # noqa: E402
from gateway.observability.request_record import RequestRecord  # noqa: E402


def identity(key_id: str, tenant_id: str) -> Identity:
    return Identity(key_id, tenant_id, None, "bench key", "live", "read_write", (), {}, 1000, None, False, False,
                    False, False, False, False, False, False, f"k:{key_id}", ())


def requests(count: int) -> list[RequestRecord]:
    keys = [identity("key_a1", "acme"), identity("key_a2", "acme"), identity("key_b1", "bolt"), None]
    now = time.time()
    made = []
    for i in range(count):
        started = 100.0 + i * 0.001
        made.append(RequestRecord(now + i * 0.0002, started + 0.0021, started, started + 0.0003, f"req-{i:016x}",
                                  "api", "GET", "/api/v1/items/42", 200 if i % 10 else 404, None, keys[i % 4],
                                  "api_key", "10.1.2.3", False))
    return made


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one(kind: str, size: int, batches: int, made: list[RequestRecord], tmp: Path) -> tuple[float, ...]:
    path = tmp / f"{kind}-{size}-{time.monotonic_ns()}.db"
    store = SQLiteRecordStore(str(path))
    await store.open()
    writer = WriterProcess(str(path), busy_timeout=5) if kind == "process" else None
    recorder = Recorder(store, CallLogConfig(flush_interval=3600), writer=writer)
    recorder.start()
    for record in made[:10]:  # the writer started and its first batch written before timing
        recorder.call(record)
    await recorder.call_buffer.flush()
    child = writer.pid if writer is not None else None
    loop0, process0, child0 = time.thread_time(), time.process_time(), cpu_of(child) if child else 0.0
    at = 0
    for _ in range(batches):
        for record in made[at : at + size]:
            recorder.call(record)
        at = (at + size) % (len(made) - size)
        await recorder.call_buffer.flush()
    rows = size * batches
    loop = (time.thread_time() - loop0) / rows * 1e6
    process = (time.process_time() - process0) / rows * 1e6
    writer_cpu = (cpu_of(child) - child0) / rows * 1e6 if child else 0.0
    await recorder.stop()
    await store.close()
    return loop, process, writer_cpu, process + writer_cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[120, 1000], help="rows per batch")
    parser.add_argument("--rows", type=int, default=20000, help="rows per round and side")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    made = requests(max(args.sizes) * 4)
    with tempfile.TemporaryDirectory() as tmp:
        print("µs of CPU per row, medians: event loop / gateway process / writer process / total")
        for size in args.sizes:
            results: dict[str, list[tuple[float, ...]]] = {"thread": [], "process": []}
            for _ in range(args.rounds):
                for kind in results:
                    results[kind].append(await one(kind, size, max(1, args.rows // size), made, Path(tmp)))
            for kind, runs in results.items():
                loop, process, writer, total = (statistics.median(r[i] for r in runs) for i in range(4))
                print(f"  batches of {size:5,d}  {kind:7s}  {loop:5.2f} / {process:5.2f} / {writer:5.2f} / {total:5.2f}")


if __name__ == "__main__":
    asyncio.run(main())
