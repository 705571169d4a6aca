"""The call-log writer process (`call_log.writer: process`): batches in on stdin, written to
SQLite, each confirmed on stdout once committed.

It runs apart from the gateway's event loop so that binding a batch's parameters and SQLite's
inserts never hold the event loop's GIL. It imports the standard library and `calllog_sql` only.

The wire, one batch at a time: a 4-byte big-endian length, then `marshal` of `(seq, prior, keep,
usage, records)`; the answer is the line `ok` or `error <text>` (the batch was rolled back).
`seq` grows with each batch; `prior` lists `(seq, count)` of earlier attempts whose outcome the
gateway never heard (a writer that died), each the first `count` records of this batch: the
table `call_log_writers` says which of them was committed, and those records are not written
twice. `records` are `flat` tuples (`calllog_process.py`): a `CallRow` with the two latencies
in seconds and the client address possibly empty.

SIGINT and SIGTERM are ignored (a terminal's Ctrl-C, or a service manager's stop, reaches the
whole process group: the gateway itself decides when to stop, and sends what it still has
first); the process ends at the end of its input, which the gateway closes when it stops, or the
kernel when it is killed: a batch already received is written either way.
"""

from __future__ import annotations

import logging
import marshal
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

from gateway.observability.calllog_sql import call_statements
from gateway.observability.logs import setup_logging
from gateway.observability.usage import Rollup

log = logging.getLogger("gateway.records")

_KEEP_MARKS = 7 * 86400.0  # a writer's mark outlives its process by this long, then goes


def connect(path: str, busy_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # transactions are explicit
    conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    conn.execute("PRAGMA synchronous=NORMAL")  # as the record store's own connection (WAL: survives a crash)
    return conn


def row(r: Sequence[Any]) -> tuple[Any, ...]:
    """A flat record as the `CallRow` the in-process writer makes of the same request."""
    up = r[10]
    return (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], round(r[9] * 1000, 3),
            None if up is None else round(up * 1000, 3), r[11], r[12] or None, r[13])


def write_batch(conn: sqlite3.Connection, token: str, seq: int, prior: Sequence[Sequence[int]], keep: bool,
                usage: bool, records: Sequence[Sequence[Any]]) -> int:
    """One batch in one transaction, with the writer's mark; the records written (fewer than
    given when an earlier attempt at the first of them had been committed)."""
    conn.execute("BEGIN IMMEDIATE")  # the write lock up front: busy_timeout applies here, not mid-batch
    try:
        found = conn.execute("SELECT seq FROM call_log_writers WHERE token = ?", (token,)).fetchone()
        mark = found[0] if found is not None else 0
        skip = max((count for attempt, count in prior if attempt <= mark), default=0)
        rows = [row(r) for r in records[skip:]]
        rollup = Rollup() if usage else None
        if rollup is not None:
            rollup.add(rows)
        for sql, params in call_statements(rows if keep else [], rollup):
            conn.execute(sql, params)
        conn.execute("INSERT INTO call_log_writers (token, seq, at) VALUES (?, ?, ?) "
                     "ON CONFLICT (token) DO UPDATE SET seq = excluded.seq, at = excluded.at", (token, seq, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(rows)


def _read(stream: BinaryIO) -> tuple[Any, ...] | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        return None  # the gateway died mid-batch: what came of it is not a batch
    batch: tuple[Any, ...] = marshal.loads(body)
    return batch


def main(argv: Sequence[str]) -> int:
    path, busy_ms, token = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging()  # the gateway's stderr: one JSON line, never a bare traceback
    try:
        return _serve(path, int(busy_ms), token)
    except Exception:
        log.exception("call log writer process failed")  # the gateway writes its batch and starts another
        return 1


def _serve(path: str, busy_ms: int, token: str) -> int:
    out = sys.stdout.buffer
    try:
        conn = connect(path, busy_ms)
        conn.execute("DELETE FROM call_log_writers WHERE at < ?", (time.time() - _KEEP_MARKS,))
    except sqlite3.Error as exc:
        out.write(f"error {exc}\n".encode())
        out.flush()
        return 1
    out.write(b"ready\n")
    out.flush()
    stream = sys.stdin.buffer
    while (batch := _read(stream)) is not None:
        seq, prior, keep, usage, records = batch
        try:
            write_batch(conn, token, seq, prior, keep, usage, records)
            answer = b"ok\n"
        except sqlite3.Error as exc:
            answer = ("error " + " ".join(str(exc).split())).encode() + b"\n"
        try:
            out.write(answer)
            out.flush()
        except BrokenPipeError:
            break  # the gateway is gone; what it sent is written
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
