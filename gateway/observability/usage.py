"""Usage rollups: per key and minute, what the call log's rows add up to, kept as counters.

A rollup row counts requests, responses by status class, rate-limited requests, and latencies in
fixed buckets (`BOUNDS_MS`), so rows from any batch, worker or instance merge by adding, and a
quantile is read off the merged buckets (`quantile`), within the bucket that holds the exact
value. The recorder folds each call-log batch into a `Rollup` as it makes the batch's rows (no
work on the request path), and the store adds it to the minute, hour and day tables in the same
transaction as the rows, so a batch retried after a failed write is never counted twice.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:  # the call-log writer process imports this module without the server's
    from gateway.observability.records import CallRow

Granularity = Literal["minute", "hour", "day"]
STEP: dict[Granularity, int] = {"minute": 60, "hour": 3600, "day": 86400}
GRANULARITIES: tuple[Granularity, ...] = ("minute", "hour", "day")

# Upper bounds (ms, inclusive) of the latency buckets, about 1.5x apart (1-2-3-5-7.5 per decade):
# a quantile read from them is within one bucket of the exact one. The last bucket is open.
BOUNDS_MS: tuple[float, ...] = (
    0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000,
)
BUCKETS = len(BOUNDS_MS) + 1

# A rollup's counters, in this order: requests, 2xx, 3xx, 4xx, 5xx, rate limited, then the buckets.
COUNTERS = ("requests", "s2xx", "s3xx", "s4xx", "s5xx", "rate_limited", *(f"l{i}" for i in range(BUCKETS)))
WIDTH = len(COUNTERS)
_FIRST_BUCKET = 6


TENANT_TOTAL = ""  # the key_id of a tenant's own rows: the sums of its keys'


class UsageRow(NamedTuple):
    """One key's (or, with key_id TENANT_TOTAL, one tenant's) counters for the bucket starting
    at `t` (epoch s)."""

    t: int
    tenant_id: str
    key_id: str
    counts: tuple[int, ...]  # WIDTH counters, in COUNTERS order

    @property
    def requests(self) -> int:
        return self.counts[0]


def bucket_of(latency_ms: float) -> int:
    return bisect.bisect_left(BOUNDS_MS, latency_ms)


def floor_to(at: float, step: int) -> int:
    return int(at // step) * step


class Rollup:
    """A batch's counters per (minute, tenant, key), folded from call rows as they are made."""

    __slots__ = ("minutes",)

    def __init__(self) -> None:
        self.minutes: dict[tuple[int, str, str], list[int]] = {}

    def __bool__(self) -> bool:
        return bool(self.minutes)

    def add(self, rows: Iterable[CallRow]) -> None:
        """Rows without a key (refused before one was known, public routes) are not usage."""
        minutes, bounds, find, first = self.minutes, BOUNDS_MS, bisect.bisect_left, _FIRST_BUCKET
        for row in rows:
            key_id = row[3]
            if key_id is None:
                continue
            slot = (int(row[0] // 60) * 60, row[2] or "", key_id)
            counts = minutes.get(slot)
            if counts is None:
                counts = minutes[slot] = [0] * WIDTH
            counts[0] += 1
            status_class = row[8] // 100
            if 2 <= status_class <= 5:
                counts[status_class - 1] += 1
            if row[11]:
                counts[5] += 1
            counts[first + find(bounds, row[9])] += 1

    def rows(self, granularity: Granularity) -> list[UsageRow]:
        """The counters at a granularity, each key's and each tenant's total, in primary-key
        order: the order the stores lock rows in."""
        step = STEP[granularity]
        merged: dict[tuple[int, str, str], list[int]] = {}
        for (minute, tenant_id, key_id), counts in self.minutes.items():
            t = minute - minute % step
            for slot in ((t, tenant_id, key_id), (t, tenant_id, TENANT_TOTAL)):
                into = merged.get(slot)
                merged[slot] = counts if into is None else list(map(operator.add, into, counts))  # never in place
        return sorted((UsageRow(t, tenant_id, key_id, tuple(counts)) for (t, tenant_id, key_id), counts in merged.items()),
                      key=order)


def order(row: UsageRow) -> tuple[str, str, int]:
    """The rollup tables' primary key."""
    return (row.tenant_id, row.key_id, row.t)


def with_tenant_totals(rows: Iterable[UsageRow]) -> list[UsageRow]:
    """Key rows and their tenants' totals (for rows made elsewhere than from calls: generated
    stores, tests), in primary-key order."""
    totals: dict[tuple[int, str], list[int]] = {}
    out = list(rows)
    for row in out:
        into = totals.setdefault((row.t, row.tenant_id), [0] * WIDTH)
        for i, value in enumerate(row.counts):
            into[i] += value
    out += [UsageRow(t, tenant_id, TENANT_TOTAL, tuple(c)) for (t, tenant_id), c in totals.items()]
    return sorted(out, key=order)


def quantiles(counts: Sequence[int], *qs: float) -> list[float | None]:
    """The q-quantiles of the latencies counted in `counts` (a row's counters), each interpolated
    linearly inside the bucket that holds it (the open last bucket: its lower bound); None when
    nothing was counted."""
    cumulative = list(itertools.accumulate(counts[_FIRST_BUCKET:]))
    total = cumulative[-1]
    if total == 0:
        return [None] * len(qs)
    found: list[float | None] = []
    for q in qs:
        rank = q * total
        i = bisect.bisect_left(cumulative, rank)  # the first bucket whose running count reaches the rank
        i = min(i, len(cumulative) - 1)
        while cumulative[i] == (cumulative[i - 1] if i else 0):  # rank 0: the first bucket with anything
            i += 1
        low = BOUNDS_MS[i - 1] if i else 0.0
        if i == len(BOUNDS_MS):
            found.append(low)
            continue
        before = cumulative[i - 1] if i else 0
        found.append(round(low + (BOUNDS_MS[i] - low) * max(0.0, rank - before) / (cumulative[i] - before), 3))
    return found


def quantile(counts: Sequence[int], q: float) -> float | None:
    return quantiles(counts, q)[0]


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a series, as the usage API answers it."""

    t: int
    counts: tuple[int, ...]

    def json(self) -> dict[str, object]:
        c = self.counts
        p50, p99 = quantiles(c, 0.5, 0.99)
        return {
            "t": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t)),
            "requests": c[0],
            "status": {"2xx": c[1], "3xx": c[2], "4xx": c[3], "5xx": c[4]},
            "rate_limited": c[5],
            "p50_ms": p50,
            "p99_ms": p99,
        }


EMPTY = (0,) * WIDTH


def dense(rows: Sequence[UsageRow], start: int, end: int, granularity: Granularity) -> list[Point]:
    """Every bucket of [start, end), zeros where nothing was counted (rows sorted by t, one per t)."""
    step = STEP[granularity]
    by_t = {row.t: row.counts for row in rows}
    return [Point(t, by_t.get(t, EMPTY)) for t in range(start, end, step)]
