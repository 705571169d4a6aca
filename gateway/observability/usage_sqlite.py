"""Usage rollups and anomalies in the SQLite record store (a mixin of `SQLiteRecordStore`).

The rollup of a call-log batch is written by `calllog_sql.usage_statements`, inside the batch's own
transaction (see `SQLiteRecordStore.append_calls`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from gateway.observability.calllog_sql import Statement, upserts
from gateway.observability.usage import TENANT_TOTAL, Granularity, UsageRow, order
from gateway.observability.usage_anomaly import Anomaly
from gateway.observability.usage_sql import ANOMALY_COLUMNS, SQLITE

_KEYS_PER_LIST = 500


def _row(r: Any, tenant_id: str, key_id: str) -> UsageRow:
    return UsageRow(r[0], tenant_id, key_id, tuple(r[1:]))


class SQLiteUsage:
    """Needs the record store's `_conn`, `_read` and `_run` (its transaction of statements)."""

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        raise NotImplementedError

    async def _run(self, statements: Iterator[Statement], *, what: str = "record write") -> int:
        raise NotImplementedError

    async def add_usage(self, granularity: Granularity, rows: Sequence[UsageRow]) -> None:
        """Add rows to a table as they are (store migration, generated stores)."""
        await self._run(upserts(granularity, sorted(rows, key=order)))

    async def usage_series(self, granularity: Granularity, *, start: int, end: int, tenant_id: str | None,
                           key_id: str | None) -> list[UsageRow]:
        if key_id is None and tenant_id is None:
            raise ValueError("a series is of a key or a tenant")
        key = key_id if key_id is not None else TENANT_TOTAL
        sql = SQLITE.series(granularity, with_tenant=tenant_id is not None)
        params = (key, tenant_id, start, end) if tenant_id is not None else (key, start, end)
        return [_row(r, tenant_id or "", key) for r in await self._read(sql, params)]

    async def usage_rows(self, granularity: Granularity, *, after: UsageRow | None, limit: int) -> list[UsageRow]:
        """Every row of a table, a page at a time in primary-key order (store migration)."""
        params: tuple[Any, ...] = (limit,) if after is None else (after.tenant_id, after.key_id, after.t, limit)
        rows = await self._read(SQLITE.page(granularity, first=after is None), params)
        return [UsageRow(r[0], r[1], r[2], tuple(r[3:])) for r in rows]

    async def usage_totals(self, granularity: Granularity, *, start: int, end: int, min_requests: int,
                           key_ids: Sequence[str] | None = None) -> list[UsageRow]:
        if key_ids is None:
            rows = await self._read(SQLITE.totals(granularity, key_list=None), (start, end, min_requests))
        else:
            rows = []
            for first in range(0, len(key_ids), _KEYS_PER_LIST):
                chunk = key_ids[first : first + _KEYS_PER_LIST]
                condition = f"key_id IN ({', '.join('?' * len(chunk))})"
                rows += await self._read(SQLITE.totals(granularity, key_list=condition),
                                         (start, end, *chunk, min_requests))
        return [UsageRow(start, r[1], r[0], tuple(r[2:])) for r in rows]

    async def prune_usage(self, granularity: Granularity, *, before: int) -> int:
        table = f"usage_{granularity}"
        return await self._run(iter([(f"DELETE FROM {table} WHERE t < ?", [before])]), what="usage retention")

    async def add_anomaly(self, anomaly: Anomaly) -> bool:
        """True when this call stored it (no instance had stored it for its key, kind and hour)."""
        values = [getattr(anomaly, c) for c in ANOMALY_COLUMNS]
        sql = (f"INSERT INTO usage_anomalies ({', '.join(ANOMALY_COLUMNS)}) VALUES ({', '.join('?' * len(values))}) "
               "ON CONFLICT DO NOTHING")
        return await self._run(iter([(sql, values)]), what="anomaly write") > 0

    async def latest_anomalies(self, key_ids: Sequence[str], *, since: float) -> dict[str, Anomaly]:
        """Each key's latest anomaly seen at or after `since`."""
        found: dict[str, Anomaly] = {}
        for first in range(0, len(key_ids), _KEYS_PER_LIST):
            chunk = key_ids[first : first + _KEYS_PER_LIST]
            rows = await self._read(
                f"SELECT {', '.join(ANOMALY_COLUMNS)} FROM usage_anomalies WHERE at >= ? "
                f"AND key_id IN ({', '.join('?' * len(chunk))}) ORDER BY at", (since, *chunk))
            found.update((r[0], Anomaly(*r)) for r in rows)
        return found

    async def prune_anomalies(self, *, before: float) -> int:
        return await self._run(iter([("DELETE FROM usage_anomalies WHERE at < ?", [before])]), what="usage retention")
