"""Usage rollups in the record store, the same on SQLite and PostgreSQL: what the call log's
batches add up to, per key and tenant, at each granularity, across instances, and kept for as
long as each granularity's retention says."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from gateway.config import CallLogConfig, UsageConfig
from gateway.observability.recorder import Recorder
from gateway.observability.records import RecordStore
from gateway.observability.request_record import RequestRecord
from gateway.observability.usage import (
    BOUNDS_MS,
    STEP,
    WIDTH,
    Granularity,
    Rollup,
    UsageRow,
    bucket_of,
    dense,
    quantile,
    with_tenant_totals,
)
from gateway.observability.usage_monitor import UsageMonitor
from tests.observability.conftest import second_store
from tests.unit.test_authorize import identity as make_identity

DAY0 = 1_772_323_200  # 2026-03-01T00:00:00Z
KEYS = {"key_a1": "acme", "key_a2": "acme", "key_b1": "bolt"}


def traffic(count: int, *, seed: int = 7, start: int = DAY0, span: int = 86400) -> list[RequestRecord]:
    """A day of requests, in time order: three keys of two tenants, and requests without a key."""
    rng = random.Random(seed)
    records = []
    for i, at in enumerate(sorted(start + rng.random() * span for _ in range(count))):
        key = rng.choice([*KEYS, None])
        identity = make_identity(id=key, name="k", tenant={"id": KEYS[key]}) if key else None  # real: a record checks it
        status = rng.choice([200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503])
        latency = rng.lognormvariate(1.0, 1.2) / 1000  # seconds: a median of ~2.7 ms, a long tail
        records.append(RequestRecord(at, 100.0 + latency, 100.0, None, f"req-{i}", "api", "GET", "/api", status,
                                     None, identity, None, "10.0.0.1", status == 429))  # type: ignore[arg-type]
    return records


def in_bucket_of(exact: float, estimate: float | None) -> bool:
    """The estimate lies in the latency bucket that holds the exact value (closer than the
    issue's "within one bucket")."""
    i = bucket_of(exact)
    low = BOUNDS_MS[i - 1] if i else 0.0
    high = BOUNDS_MS[i] if i < len(BOUNDS_MS) else math.inf
    return estimate is not None and low <= estimate <= high


def nearest_rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def write(recorder: Recorder, records: list[RequestRecord], batch: int = 1000) -> None:
    """As the call log's buffer writes them: a batch at a time."""
    for start in range(0, len(records), batch):
        await recorder._append_calls(records[start : start + batch])


def expected(calls: list[Any], step: int, field: str) -> dict[tuple[str, int], Counter[str]]:
    """Counts per (key or tenant, bucket) from call-log entries read back from the store."""
    counts: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for c in calls:
        if c.key_id is None:
            continue
        slot = (getattr(c, field), int(c.at.timestamp()) // step * step)
        counts[slot]["requests"] += 1
        counts[slot][f"{c.status // 100}xx"] += 1
        counts[slot]["rate_limited"] += c.rate_limited
    return counts


def observed(rows: list[UsageRow], name: str) -> dict[tuple[str, int], Counter[str]]:
    out: dict[tuple[str, int], Counter[str]] = {}
    for r in rows:
        c = r.counts
        names = ("requests", "2xx", "3xx", "4xx", "5xx", "rate_limited")  # c's first counters
        out[(name, r.t)] = Counter({k: v for k, v in zip(names, c, strict=False) if v})
    return out


async def test_rollups_equal_the_call_logs_counts_for_a_day_of_traffic(records: RecordStore) -> None:
    records_made = traffic(6000)
    await write(Recorder(records, CallLogConfig()), records_made)
    calls = await records.list_calls(cursor=None, newest_first=False, limit=10_000, key_id=None, status=None)
    assert len(calls) == 6000
    for granularity in ("minute", "hour", "day"):
        step = STEP[granularity]  # type: ignore[index]
        got: dict[tuple[str, int], Counter[str]] = {}
        for key in KEYS:
            got |= observed(await records.usage_series(granularity, start=DAY0, end=DAY0 + 86400,  # type: ignore[arg-type]
                                                        tenant_id=None, key_id=key), key)
        assert got == expected(calls, step, "key_id"), granularity
        got = {}
        for tenant in ("acme", "bolt"):
            got |= observed(await records.usage_series(granularity, start=DAY0, end=DAY0 + 86400,  # type: ignore[arg-type]
                                                       tenant_id=tenant, key_id=None), tenant)
        assert got == expected(calls, step, "tenant_id"), granularity
    # a key asked for under another tenant has no usage there
    assert await records.usage_series("day", start=DAY0, end=DAY0 + 86400, tenant_id="bolt", key_id="key_a1") == []


async def test_a_days_quantiles_fall_in_the_exact_values_bucket(records: RecordStore) -> None:
    made = traffic(6000, seed=11)
    await write(Recorder(records, CallLogConfig()), made)
    calls = await records.list_calls(cursor=None, newest_first=False, limit=10_000, key_id="key_a1", status=None)
    exact = sorted(c.latency_ms for c in calls)
    [day] = await records.usage_series("day", start=DAY0, end=DAY0 + 86400, tenant_id=None, key_id="key_a1")
    for q in (0.5, 0.9, 0.99):
        estimate = quantile(day.counts, q)
        assert in_bucket_of(nearest_rank(exact, q), estimate), (q, estimate)


@pytest.mark.parametrize("seed", range(20))
def test_quantiles_from_merged_buckets_fall_in_the_exact_values_bucket(seed: int) -> None:
    rng = random.Random(seed)
    shape = rng.choice(["lognormal", "uniform", "bimodal", "constant"])
    n = rng.randint(1, 5000)
    if shape == "lognormal":
        values = [rng.lognormvariate(rng.uniform(-2, 6), rng.uniform(0.1, 2)) for _ in range(n)]
    elif shape == "uniform":
        values = [rng.uniform(0, 2000) for _ in range(n)]
    elif shape == "bimodal":
        values = [rng.choice([rng.gauss(2, 0.3), rng.gauss(900, 50)]) for _ in range(n)]
    else:
        values = [rng.choice([0.05, 1.0, 42.0, 70000.0])] * n
    values = [max(0.0, v) for v in values]
    # two halves rolled up apart (two instances, or two batches), merged by adding
    halves = [values[: n // 2], values[n // 2 :]]
    merged = [0] * WIDTH
    for part in halves:
        rollup = Rollup()
        rollup.add([(DAY0, "r", "acme", "key_a1", "k", "GET", "api", "/", 200, v, None, False) for v in part])
        for row in rollup.rows("day"):
            merged = [a + b for a, b in zip(merged, row.counts, strict=True)]
    ordered = sorted(values)
    for q in (0.01, 0.5, 0.9, 0.99, 1.0):
        exact = nearest_rank(ordered, q)
        assert in_bucket_of(exact, quantile(merged, q)), (shape, q, quantile(merged, q), exact)
    assert quantile([0] * WIDTH, 0.5) is None


async def test_instances_rollups_add_up(records: RecordStore, tmp_path: Path) -> None:
    # two instances (their own connections) writing the same key's same minutes at once
    other = second_store(records, tmp_path)
    await other.open()
    try:
        made = traffic(4000, seed=3, span=600)
        await asyncio.gather(write(Recorder(records, CallLogConfig()), made[::2], batch=250),
                             write(Recorder(other, CallLogConfig()), made[1::2], batch=250))
    finally:
        await other.close()
    for key in KEYS:
        rows = await records.usage_series("minute", start=DAY0, end=DAY0 + 600, tenant_id=None, key_id=key)
        want = Counter(int(r.at) // 60 * 60 for r in made if r.identity and r.identity.key_id == key)
        assert {r.t: r.requests for r in rows} == want


async def test_usage_is_kept_with_the_call_log_off(records: RecordStore) -> None:
    made = traffic(500, seed=5)
    await write(Recorder(records, CallLogConfig(enabled=False)), made)
    assert await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None) == []
    [day] = await records.usage_series("day", start=DAY0, end=DAY0 + 86400, tenant_id="acme", key_id=None)
    assert day.requests == sum(1 for r in made if r.identity and r.identity.tenant_id == "acme")
    # and neither with both off: the recorder wants no requests at all
    assert not Recorder(records, CallLogConfig(enabled=False), usage=False).calls_enabled


class Interrupted(Exception):
    pass


async def test_a_failed_batch_written_again_is_counted_once(records: RecordStore) -> None:
    # the rollup goes in the call-log rows' transaction: if it fails, neither is kept, and the
    # buffer's next try writes both once
    made = traffic(300, seed=9)
    recorder = Recorder(records, CallLogConfig())
    rollup_rows = Rollup.rows
    calls = 0

    def failing_rows(self: Rollup, granularity: Granularity) -> list[UsageRow]:
        nonlocal calls
        calls += 1
        if granularity == "day" and calls <= 3:
            raise Interrupted  # after the call rows and minute and hour upserts ran
        return rollup_rows(self, granularity)

    Rollup.rows = failing_rows  # type: ignore[method-assign]
    try:
        with pytest.raises(Interrupted):
            await recorder._append_calls(made)
        await recorder._append_calls(made)
    finally:
        Rollup.rows = rollup_rows  # type: ignore[method-assign]
    rows = await records.list_calls(cursor=None, newest_first=False, limit=1000, key_id=None, status=None)
    assert len(rows) == 300
    for granularity in ("minute", "hour", "day"):
        total = 0
        for tenant in ("acme", "bolt"):
            total += sum(r.requests for r in await records.usage_series(
                granularity, start=DAY0, end=DAY0 + 86400, tenant_id=tenant, key_id=None))  # type: ignore[arg-type]
        assert total == sum(1 for r in made if r.identity), granularity


async def test_retention_removes_each_granularity_past_its_age(records: RecordStore) -> None:
    now = DAY0 + 800 * 86400 + 1234
    ages = {"minute": [47 * 3600, 48 * 3600 + 60, 49 * 3600], "hour": [89 * 86400, 90 * 86400 + 3600, 91 * 86400],
            "day": [729 * 86400, 732 * 86400, 740 * 86400]}
    counts = (1,) + (0,) * (WIDTH - 1)
    for granularity, olds in ages.items():
        step = STEP[granularity]  # type: ignore[index]
        await records.add_usage(granularity, with_tenant_totals(  # type: ignore[arg-type]
            UsageRow((now - age) // step * step, "acme", key, counts) for age in olds for key in KEYS))
    removed = await UsageMonitor(records, UsageConfig(), on_anomaly=_ignore, clock=lambda: now).prune()  # type: ignore[arg-type]
    assert removed == 2 * 3 * 4  # the two oldest of each granularity, for three keys and the tenant
    for granularity, olds in ages.items():
        step = STEP[granularity]  # type: ignore[index]
        rows = await records.usage_series(granularity, start=0, end=now + step, tenant_id="acme",  # type: ignore[arg-type]
                                          key_id=None)
        assert [(r.t, r.requests) for r in rows] == [((now - olds[0]) // step * step, 3)], granularity


async def _ignore(anomaly: Any) -> None:
    return None


def test_a_series_has_every_bucket_of_its_range() -> None:
    rows = [UsageRow(DAY0 + 120, "acme", "", (5,) + (0,) * (WIDTH - 1))]
    points = dense(rows, DAY0, DAY0 + 240, "minute")
    assert [(p.t, p.counts[0]) for p in points] == [(DAY0, 0), (DAY0 + 60, 0), (DAY0 + 120, 5), (DAY0 + 180, 0)]
    assert points[0].json() == {"t": "2026-03-01T00:00:00Z", "requests": 0, "status": {"2xx": 0, "3xx": 0, "4xx": 0,
                                "5xx": 0}, "rate_limited": 0, "p50_ms": None, "p99_ms": None}


async def test_every_row_pages_out_in_key_order(records: RecordStore) -> None:
    # what `gateway store migrate` copies
    made = with_tenant_totals(UsageRow(DAY0 + i * 3600, tenant, key, (i + 1,) + (0,) * (WIDTH - 1))
                              for i in range(5) for key, tenant in KEYS.items())
    await records.add_usage("hour", made)
    got: list[UsageRow] = []
    while page := await records.usage_rows("hour", after=got[-1] if got else None, limit=4):
        got += page
    assert got == made
