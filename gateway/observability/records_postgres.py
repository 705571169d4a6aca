"""The audit trail and call log in PostgreSQL, shared by every gateway instance on that store.

Cursor paging reads by id, so ids must become visible in order even when several instances
append at once: each append takes a transaction-scoped advisory lock per table, so batches
commit one after another (one short lock per batch, not per row). Rows go in with `COPY`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg

from gateway.keystore.base import StoreError
from gateway.keystore.database_postgres import UNAVAILABLE, connect_args, create_pool
from gateway.observability.records import AuditEntry, CallEntry, CallRow, details_of, details_text
from gateway.observability.usage import Rollup
from gateway.observability.usage_postgres import PostgresUsage, write_rollup
from gateway.observability.usage_sql import POSTGRES

_AUDIT_LOCK = 0x67617401
_CALL_LOCK = 0x67617402

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS audit_log (
        id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        target_type TEXT NOT NULL, target_id TEXT NOT NULL, tenant_id TEXT, key_name TEXT, source_ip TEXT)""",
    """CREATE TABLE IF NOT EXISTS call_log (
        id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL, request_id TEXT NOT NULL, tenant_id TEXT,
        key_id TEXT, key_name TEXT, method TEXT NOT NULL, route TEXT, path TEXT NOT NULL,
        status INTEGER NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, upstream_latency_ms DOUBLE PRECISION,
        rate_limited BOOLEAN NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS call_log_key ON call_log (key_id, id)",
    "CREATE INDEX IF NOT EXISTS call_log_at ON call_log (at)",
    "ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS actor_email TEXT",
    "CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log (tenant_id, id)",
    "CREATE INDEX IF NOT EXISTS call_log_tenant ON call_log (tenant_id, id)",  # the portal's call log (records_sqlite.py)
    "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS client_ip TEXT",
    "ALTER TABLE call_log ADD COLUMN IF NOT EXISTS error TEXT",
    "ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS details TEXT",
    *POSTGRES.schema(),
]

_AUDIT_COLUMNS = ("at", "actor", "action", "target_type", "target_id", "tenant_id", "key_name", "source_ip",
                  "actor_email", "details")
_CALL_COLUMNS = ("at", "request_id", "tenant_id", "key_id", "key_name", "method", "route", "path", "status",
                 "latency_ms", "upstream_latency_ms", "rate_limited", "client_ip", "error")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


class PostgresRecordStore(PostgresUsage):
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._dsn, self._schema = connect_args(url)
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await create_pool(self._dsn, self._schema, min_size=1, max_size=4, timeout=self._timeout)
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_LOCK)
                for statement in _SCHEMA:
                    await conn.execute(statement)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            await self.close()
            raise StoreError(f"cannot open record store: {exc}") from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _acquire(self) -> Any:
        if self._pool is None:
            raise StoreError("record store is not open")
        return self._pool.acquire(timeout=self._timeout)

    async def _append(
        self, table: str, lock: int, columns: tuple[str, ...], rows: list[tuple[Any, ...]], usage: Rollup | None = None
    ) -> None:
        try:
            async with self._acquire() as conn, conn.transaction():
                if rows:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
                    await conn.copy_records_to_table(table, records=rows, columns=list(columns))
                await write_rollup(conn, usage)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"record write failed: {exc}") from None

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            async with self._acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"record read failed: {exc}") from None

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        await self._append("audit_log", _AUDIT_LOCK, _AUDIT_COLUMNS, [
            (e.at, e.actor, e.action, e.target_type, e.target_id, e.tenant_id, e.key_name, e.source_ip,
             e.actor_email, details_text(e.details))
            for e in entries
        ])

    async def list_audit(self, *, after: int | None, limit: int, newest_first: bool = False,
                         tenant_id: str | None = None, action: str | None = None) -> list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        if after is not None or not newest_first:
            args.append(after or 0)
            where.append(f"id {'<' if newest_first else '>'} ${len(args)}")
        for column, value in (("tenant_id", tenant_id), ("action", action)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        condition = (" WHERE " + " AND ".join(where)) if where else ""
        order = "DESC" if newest_first else "ASC"
        rows = await self._fetch(
            f"SELECT id, {', '.join(_AUDIT_COLUMNS)} FROM audit_log{condition} ORDER BY id {order} "
            f"LIMIT ${len(args) + 1}", *args, limit)
        return [
            AuditEntry(id=r[0], at=_utc(r[1]), actor=r[2], action=r[3], target_type=r[4], target_id=r[5],
                       tenant_id=r[6], key_name=r[7], source_ip=r[8], actor_email=r[9], details=details_of(r[10]))
            for r in rows
        ]

    async def append_calls(self, rows: Sequence[CallRow], usage: Rollup | None = None) -> None:
        """Rows, and the usage they add up to, in one transaction: a batch written again after
        a failure is never counted twice."""
        utc, at = dt.UTC, dt.datetime.fromtimestamp
        await self._append("call_log", _CALL_LOCK, _CALL_COLUMNS, [(at(row[0], utc), *row[1:]) for row in rows], usage)

    async def list_calls(
        self, *, cursor: int | None, newest_first: bool, limit: int, key_id: str | None, status: int | None,
        tenant_id: str | None = None,
    ) -> list[CallEntry]:
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (("id < ${}" if newest_first else "id > ${}", cursor),
                              ("key_id = ${}", key_id), ("status = ${}", status), ("tenant_id = ${}", tenant_id)):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        condition = (" WHERE " + " AND ".join(where)) if where else ""
        order = "DESC" if newest_first else "ASC"
        rows = await self._fetch(
            f"SELECT id, {', '.join(_CALL_COLUMNS)} FROM call_log{condition} ORDER BY id {order} LIMIT ${len(args) + 1}",
            *args, limit,
        )
        return [
            CallEntry(id=r[0], at=_utc(r[1]), request_id=r[2], tenant_id=r[3], key_id=r[4], key_name=r[5],
                      method=r[6], route=r[7], path=r[8], status=r[9], latency_ms=r[10],
                      upstream_latency_ms=r[11], rate_limited=r[12], client_ip=r[13], error=r[14])
            for r in rows
        ]

    async def prune_calls(self, *, older_than: dt.datetime, max_rows: int) -> int:
        try:
            async with self._acquire() as conn, conn.transaction():
                aged = await conn.execute("DELETE FROM call_log WHERE at < $1", older_than)
                over = await conn.execute(
                    "DELETE FROM call_log WHERE id <= (SELECT id FROM call_log ORDER BY id DESC LIMIT 1 OFFSET $1)",
                    max_rows,
                )
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"call log pruning failed: {exc}") from None
        return int(aged.split()[-1]) + int(over.split()[-1])
