"""Cache-miss key lookups (hash → principal) on a store holding many keys, SQLite vs PostgreSQL.

    python bench/micro/store_lookup.py                  # 1,000,000 keys in each store, 5,000 lookups
    python bench/micro/store_lookup.py --keys 100000 --postgres postgresql://postgres@127.0.0.1:5432/test

What the gateway pays when a key is not in its cache: one indexed join through the store's own
`get_principal_by_hash`. Keys are bulk-loaded with the stores' SQL (a million inserts through the
admin path would measure the loader); PostgreSQL uses a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.keystore.base import KeyStore  # noqa: E402
from gateway.keystore.database_postgres import connect_args  # noqa: E402
from gateway.keystore.postgres import PostgresKeyStore  # noqa: E402
from gateway.keystore.sqlite import SQLiteKeyStore  # noqa: E402
from gateway.keystore.sqlite_times import ts  # noqa: E402

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def rows(n: int) -> list[tuple]:
    return [(f"key_{i:020d}", "bench", None, f"k{i}", "gw_live_abcd", "wxyz", hashlib.sha256(b"%d" % i).hexdigest(),
             "read_write", "[]", "{}", "live", None, NOW, None, None, None, None) for i in range(n)]


async def load_sqlite(path: str, n: int) -> KeyStore:
    store = SQLiteKeyStore(path)
    await store.open()
    await store.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO tenants VALUES ('bench', 'Bench', 'starter', 0, ?, ?)", (ts(NOW), ts(NOW)))
    db.executemany("INSERT INTO api_keys VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   [(*r[:12], ts(r[12]), *r[13:]) for r in rows(n)])
    db.commit()
    db.close()
    store = SQLiteKeyStore(path)
    await store.open()
    return store


async def load_postgres(url: str, n: int) -> KeyStore:
    import asyncpg

    store = PostgresKeyStore(url)
    await store.open()
    dsn, schema = connect_args(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        await conn.execute("INSERT INTO tenants VALUES ('bench', 'Bench', 'starter', false, $1, $1)", NOW)
        await conn.copy_records_to_table("api_keys", records=rows(n))
        await conn.execute("ANALYZE api_keys")
    finally:
        await conn.close()
    return store


async def measure(name: str, store: KeyStore, n: int, lookups: int) -> dict[str, float]:
    picks = [hashlib.sha256(b"%d" % random.randrange(n)).hexdigest() for _ in range(lookups)]
    for h in picks[:200]:  # warm connections and the page cache
        await store.get_principal_by_hash(h)
    times = []
    for h in picks:
        start = time.perf_counter()
        found = await store.get_principal_by_hash(h)
        times.append(time.perf_counter() - start)
        assert found is not None
    cuts = statistics.quantiles(times, n=100)
    result = {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000, "mean_ms": statistics.fmean(times) * 1000}
    print(f"{name:<12} {n:>10,} keys   p50 {result['p50_ms']:.3f} ms   p99 {result['p99_ms']:.3f} ms   "
          f"mean {result['mean_ms']:.3f} ms", flush=True)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sqlite = await load_sqlite(f"{tmp}/gateway.db", args.keys)
        print(f"loaded SQLite in {time.perf_counter() - started:.1f} s", flush=True)
        try:
            await measure("sqlite", sqlite, args.keys, args.lookups)
        finally:
            await sqlite.close()
    url = f"{args.postgres}?schema=bench_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    pg = await load_postgres(url, args.keys)
    print(f"loaded PostgreSQL in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        await measure("postgresql", pg, args.keys, args.lookups)
    finally:
        await pg.close()
        import asyncpg

        dsn, schema = connect_args(url)
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
