"""Usage rollups and anomalies in the PostgreSQL record store (a mixin of `PostgresRecordStore`).

Several instances add to the same rows at once: each transaction upserts its rows in one order
(table by table, rows in primary-key order), so two of them wait for each other and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from gateway.keystore.base import StoreError
from gateway.keystore.database_postgres import UNAVAILABLE
from gateway.observability.usage import GRANULARITIES, TENANT_TOTAL, Granularity, Rollup, UsageRow, order
from gateway.observability.usage_anomaly import Anomaly
from gateway.observability.usage_sql import ANOMALY_COLUMNS, POSTGRES, TABLE

_ROWS_PER_UPSERT = 500  # 44 columns: 22,000 parameters, under PostgreSQL's 65,535


async def add_rollup(conn: Any, granularity: Granularity, rows: Sequence[UsageRow]) -> None:
    for start in range(0, len(rows), _ROWS_PER_UPSERT):
        chunk = rows[start : start + _ROWS_PER_UPSERT]
        await conn.execute(POSTGRES.upsert(granularity, len(chunk)),
                           *[v for r in chunk for v in (r.key_id, r.t, r.tenant_id, *r.counts)])


async def write_rollup(conn: Any, rollup: Rollup | None) -> None:
    """A batch's rollup added to the minute, hour and day tables, inside the caller's transaction."""
    if rollup:
        for granularity in GRANULARITIES:
            await add_rollup(conn, granularity, rollup.rows(granularity))


class PostgresUsage:
    """Needs the record store's `_acquire` and `_fetch`."""

    def _acquire(self) -> Any:
        raise NotImplementedError

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def _execute(self, what: str, sql: str, *args: Any) -> int:
        try:
            async with self._acquire() as conn:
                status = await conn.execute(sql, *args)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"{what} failed: {exc}") from None
        return int(status.split()[-1])

    async def add_usage(self, granularity: Granularity, rows: Sequence[UsageRow]) -> None:
        """Add rows to a table as they are (store migration, generated stores)."""
        try:
            async with self._acquire() as conn, conn.transaction():
                await add_rollup(conn, granularity, sorted(rows, key=order))
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"usage write failed: {exc}") from None

    async def usage_series(self, granularity: Granularity, *, start: int, end: int, tenant_id: str | None,
                           key_id: str | None) -> list[UsageRow]:
        if key_id is None and tenant_id is None:
            raise ValueError("a series is of a key or a tenant")
        key = key_id if key_id is not None else TENANT_TOTAL
        sql = POSTGRES.series(granularity, with_tenant=tenant_id is not None)
        args = (key, tenant_id, start, end) if tenant_id is not None else (key, start, end)
        return [UsageRow(r[0], tenant_id or "", key, tuple(r[1:])) for r in await self._fetch(sql, *args)]

    async def usage_rows(self, granularity: Granularity, *, after: UsageRow | None, limit: int) -> list[UsageRow]:
        """Every row of a table, a page at a time in primary-key order (store migration)."""
        args: tuple[Any, ...] = (limit,) if after is None else (after.tenant_id, after.key_id, after.t, limit)
        rows = await self._fetch(POSTGRES.page(granularity, first=after is None), *args)
        return [UsageRow(r[0], r[1], r[2], tuple(r[3:])) for r in rows]

    async def usage_totals(self, granularity: Granularity, *, start: int, end: int, min_requests: int,
                           key_ids: Sequence[str] | None = None) -> list[UsageRow]:
        if key_ids is None:
            rows = await self._fetch(POSTGRES.totals(granularity, key_list=None), start, end, min_requests)
        else:
            rows = await self._fetch(POSTGRES.totals(granularity, key_list="key_id = ANY($4::text[])"),
                                     start, end, min_requests, list(key_ids))
        return [UsageRow(start, r[1], r[0], tuple(r[2:])) for r in rows]

    async def prune_usage(self, granularity: Granularity, *, before: int) -> int:
        return await self._execute("usage retention", f"DELETE FROM {TABLE[granularity]} WHERE t < $1", before)

    async def add_anomaly(self, anomaly: Anomaly) -> bool:
        """True when this call stored it (no instance had stored it for its key, kind and hour)."""
        marks = ", ".join(f"${i + 1}" for i in range(len(ANOMALY_COLUMNS)))
        sql = f"INSERT INTO usage_anomalies ({', '.join(ANOMALY_COLUMNS)}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        return await self._execute("anomaly write", sql, *[getattr(anomaly, c) for c in ANOMALY_COLUMNS]) > 0

    async def latest_anomalies(self, key_ids: Sequence[str], *, since: float) -> dict[str, Anomaly]:
        """Each key's latest anomaly seen at or after `since`."""
        rows = await self._fetch(
            f"SELECT {', '.join(ANOMALY_COLUMNS)} FROM usage_anomalies WHERE at >= $1 AND key_id = ANY($2::text[]) "
            "ORDER BY at", since, list(key_ids))
        return {r[0]: Anomaly(*r) for r in rows}

    async def prune_anomalies(self, *, before: float) -> int:
        return await self._execute("usage retention", "DELETE FROM usage_anomalies WHERE at < $1", before)
