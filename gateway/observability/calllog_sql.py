"""A call-log batch as SQLite statements: its rows and the usage they add up to.

Written by the record store's own connection (`records_sqlite.py`, the writer thread) or by the
call-log writer process (`calllog_child.py`), which imports this module and the standard library
only, so it starts in milliseconds and holds none of the server's memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.observability.usage import GRANULARITIES, Granularity, Rollup, UsageRow
from gateway.observability.usage_sql import SQLITE

if TYPE_CHECKING:
    from gateway.observability.records import CallRow

E = TypeVar("E")
Statement = tuple[str, list[Any]]

CALL_COLUMNS = ("at", "request_id", "tenant_id", "key_id", "key_name", "method", "route", "path", "status",
                "latency_ms", "upstream_latency_ms", "rate_limited", "client_ip", "error")
# The last batch each call-log writer process committed (`calllog_child.py`): a batch whose
# writer died before confirming it is sent again, and is skipped if it was committed after all.
WRITERS_SCHEMA = """
    CREATE TABLE IF NOT EXISTS call_log_writers (
        token TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        at REAL NOT NULL
    )
"""
_ROWS_PER_STATEMENT = 400  # 14 columns: 5,600 parameters, under SQLite's 32,766 limit
_ROWS_PER_UPSERT = 300  # 44 columns: 13,200 parameters

_second = -1
_second_text = ""


def stamp(at: float) -> str:
    """A time in epoch seconds as the call log stores it (`records_sqlite._ts`'s text), without
    a datetime per row: the text of the second is made once per second (rows come in time
    order), the microseconds are appended."""
    global _second, _second_text
    # As `datetime.fromtimestamp` rounds: the fraction alone (exact once the whole seconds are
    # off), to the nearest microsecond; `at * 1e6` would round twice (floats step by 0.25 there).
    second = math.floor(at)
    micros = round((at - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _second = second
    return f"{_second_text}{micros:06d}Z"


def call_params(rows: Sequence[CallRow]) -> list[Any]:
    """A statement's parameters: each row as it is (a bool binds as 0/1), its time as text."""
    params: list[Any] = []
    add, extend = params.append, params.extend
    for row in rows:
        add(stamp(row[0]))
        extend(row[1:])
    return params


def inserts(
    table: str, columns: Sequence[str], entries: Sequence[E], params: Callable[[Sequence[E]], list[Any]]
) -> Iterator[Statement]:
    """Entries in multi-row statements of up to `_ROWS_PER_STATEMENT`; `params` gives one
    statement's parameters, row after row.

    `executemany` steps once per row, and Python's sqlite3 releases and retakes the GIL on
    every step: with the event loop busy on the other side of the GIL, each row then waits
    for a thread switch. A few large statements take the GIL a few times per batch. Rows are
    rendered one statement at a time, between awaits (this is a generator): rendering a
    whole second's batch at once held the event loop for milliseconds, which every request
    in flight then waited.
    """
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    for start in range(0, len(entries), _ROWS_PER_STATEMENT):
        chunk = entries[start : start + _ROWS_PER_STATEMENT]
        yield head + ", ".join([one] * len(chunk)), params(chunk)


def upserts(granularity: Granularity, rows: Sequence[UsageRow]) -> Iterator[Statement]:
    for start in range(0, len(rows), _ROWS_PER_UPSERT):
        chunk = rows[start : start + _ROWS_PER_UPSERT]
        yield SQLITE.upsert(granularity, len(chunk)), [v for r in chunk for v in (r.key_id, r.t, r.tenant_id, *r.counts)]


def usage_statements(rollup: Rollup | None) -> Iterator[Statement]:
    """A batch's rollup added to the minute, hour and day tables (in that order, rows in primary-key order)."""
    if rollup:
        for granularity in GRANULARITIES:
            yield from upserts(granularity, rollup.rows(granularity))


def call_statements(rows: Sequence[CallRow], usage: Rollup | None) -> Iterator[Statement]:
    """A batch: its rows, then its usage (one transaction: a batch written again after a failure
    is never counted twice)."""
    yield from inserts("call_log", CALL_COLUMNS, rows, call_params)
    yield from usage_statements(usage)
