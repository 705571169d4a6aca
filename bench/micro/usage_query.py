"""How long the usage API's queries take on a store with a busy tenant's history (run by hand).

    python bench/micro/usage_query.py                       # SQLite, in a temporary directory
    python bench/micro/usage_query.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python bench/micro/usage_query.py --calls 2000000 --other-keys 500

The store is generated: the rollups that 10 million requests over the last 30 days make for one
busy tenant (its keys' minute rows for 48 h, hour rows for 90 days, day rows for two years, as
retention keeps them), other tenants' keys beside it so the indexes have something to skip, and
`--calls` call-log rows, to show the query reads none of them: the same month counted from the
call log is timed beside it. Each query runs as `GET /admin/usage` runs it (read, fill every
bucket, derive p50/p99, make the JSON body); the median and worst of `--repeat` runs are printed.
The issue's target: a month by day for a busy tenant well under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.observability.records import RecordStore  # noqa: E402
from gateway.observability.records_postgres import PostgresRecordStore  # noqa: E402
from gateway.observability.records_sqlite import SQLiteRecordStore  # noqa: E402
from gateway.observability.usage import STEP, WIDTH, Granularity, UsageRow, with_tenant_totals  # noqa: E402
from gateway.observability.usage_query import UsageQuery, series  # noqa: E402

TENANT = "busy"
MONTH_REQUESTS = 10_000_000


def counts(rng: random.Random, requests: int) -> tuple[int, ...]:
    c = [0] * WIDTH
    c[0] = requests
    c[3] = requests // 50          # 4xx
    c[4] = requests // 500         # 5xx
    c[2] = requests // 100         # 3xx
    c[1] = requests - c[2] - c[3] - c[4]
    c[5] = requests // 200         # rate limited
    left = requests
    for bucket in (8, 9, 10, 11, 12, 14):  # latencies of 1-15 ms, most around 2-5 ms
        share = left if bucket == 14 else int(left * rng.uniform(0.2, 0.5))
        c[6 + bucket] += share
        left -= share
    return tuple(c)


async def generate(store: RecordStore, now: int, keys: int, other_keys: int, seed: int = 1) -> int:
    """The rollups retention would keep; the busy tenant's month adds up to MONTH_REQUESTS."""
    rng = random.Random(seed)
    written = 0
    spans: dict[Granularity, int] = {"minute": 2 * 86400, "hour": 90 * 86400, "day": 730 * 86400}
    for granularity, span in spans.items():
        step = STEP[granularity]
        per_bucket = max(1, MONTH_REQUESTS * step // (30 * 86400) // keys)
        end = now // step * step
        for owner, count, scale in ((TENANT, keys, 1.0), ("other", other_keys, 0.01)):
            for k in range(count):
                tenant = TENANT if owner == TENANT else f"tenant_{k // 2}"
                rows = [UsageRow(t, tenant, f"key_{owner}_{k}", counts(rng, max(1, int(per_bucket * scale))))
                        for t in range(end - span, end + step, step)]
                await store.add_usage(granularity, with_tenant_totals(rows))
                written += len(rows)
    return written


async def add_calls(store: RecordStore, calls: int, now: int) -> None:
    batch = 20_000
    for start in range(0, calls, batch):
        await store.append_calls([
            (now - 30 * 86400 * (i / calls), f"req-{i}", TENANT, f"key_{TENANT}_{i % 8}", "k", "GET", "api", "/api",
             200, 2.5, 2.0, False, "10.0.0.1", None) for i in range(start, min(calls, start + batch))])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL URL (a schema bench_usage is made and dropped)")
    parser.add_argument("--keys", type=int, default=8, help="the busy tenant's keys")
    parser.add_argument("--other-keys", type=int, default=200, help="other tenants' keys (two per tenant)")
    parser.add_argument("--calls", type=int, default=1_000_000, help="call-log rows beside the rollups")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    now = int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"{args.postgres}?schema=bench_usage" if args.postgres else None
        store: RecordStore = PostgresRecordStore(url) if url else SQLiteRecordStore(str(Path(tmp) / "records.db"))
        await store.open()
        try:
            began = time.perf_counter()
            rows = await generate(store, now, args.keys, args.other_keys)
            await add_calls(store, args.calls, now)
            print(f"generated {rows:,} rollup rows and {args.calls:,} call-log rows in "
                  f"{time.perf_counter() - began:.0f} s")
            queries = {
                "tenant, a month by day": UsageQuery("day", (now - 30 * 86400) // 86400 * 86400,
                                                     now // 86400 * 86400 + 86400, TENANT, None),
                "key, a month by day": UsageQuery("day", (now - 30 * 86400) // 86400 * 86400,
                                                  now // 86400 * 86400 + 86400, None, f"key_{TENANT}_0"),
                "tenant, 30 days by hour": UsageQuery("hour", (now - 30 * 86400) // 3600 * 3600,
                                                      now // 3600 * 3600 + 3600, TENANT, None),
                "tenant, a day by minute": UsageQuery("minute", (now - 86400) // 60 * 60, now // 60 * 60 + 60,
                                                      TENANT, None),
            }
            for name, query in queries.items():
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    body = json.dumps(await series(store, query))
                    times.append(time.perf_counter() - start)
                month = json.loads(body)["data"]
                total = sum(point["requests"] for point in month)
                print(f"{name:<28} median {statistics.median(times) * 1000:8.2f} ms   worst {max(times) * 1000:8.2f} ms"
                      f"   ({len(month)} points, {total:,} requests)")
            if isinstance(store, SQLiteRecordStore):
                start = time.perf_counter()
                rows_read = await store._read("SELECT substr(at, 1, 10), count(*) FROM call_log WHERE tenant_id = ? "
                                              "GROUP BY 1", (TENANT,))
                print(f"{'the call log, counted':<28} once   {(time.perf_counter() - start) * 1000:8.2f} ms   "
                      f"({len(rows_read)} days, {sum(r[1] for r in rows_read):,} rows scanned)")
                plan = await store._read("EXPLAIN QUERY PLAN SELECT t, requests FROM usage_day WHERE key_id = '' "
                                         "AND tenant_id = ? AND t >= ? AND t < ? ORDER BY t", (TENANT, 0, now))
                print("query plan (tenant, by day):", "; ".join(str(r[-1]) for r in plan))
        finally:
            await store.close()
            if url:
                from tests.services import drop_schema

                await drop_schema(url)


if __name__ == "__main__":
    asyncio.run(main())
