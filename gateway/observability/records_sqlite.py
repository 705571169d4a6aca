"""The audit trail and call log in the same SQLite file as the keys, on their own connection.

Their own connection keeps batch writes of the call log from queueing behind key lookups; WAL
mode lets both connections read while one writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.config import Config
from gateway.keystore.base import StoreError
from gateway.observability.calllog_sql import WRITERS_SCHEMA, Statement, call_statements, inserts
from gateway.observability.records import AuditEntry, CallEntry, CallRow, details_of, details_text
from gateway.observability.usage import Rollup
from gateway.observability.usage_sql import SQLITE
from gateway.observability.usage_sqlite import SQLiteUsage

_SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        tenant_id TEXT,
        key_name TEXT,
        source_ip TEXT,
        actor_email TEXT,
        details TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS call_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        request_id TEXT NOT NULL,
        tenant_id TEXT,
        key_id TEXT,
        key_name TEXT,
        method TEXT NOT NULL,
        route TEXT,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        upstream_latency_ms REAL,
        rate_limited INTEGER NOT NULL,
        client_ip TEXT,
        error TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS call_log_key ON call_log (key_id, id)",
    "CREATE INDEX IF NOT EXISTS call_log_at ON call_log (at)",
    WRITERS_SCHEMA,
    *SQLITE.schema(),
]
# Added later, to files made before: (table, column, declaration); then what needs the columns.
_COLUMNS = [("audit_log", "actor_email", "TEXT"), ("call_log", "client_ip", "TEXT"), ("call_log", "error", "TEXT"),
            ("audit_log", "details", "TEXT")]
# call_log_tenant: the portal's call log is any tenant member's to page through, with filters that
# match nothing (status=599): without it each page scanned the whole call log, every tenant's
# rows (0.5 s a request beside a million rows of another tenant, on the connection the writes use)
_LATER = ["CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log (tenant_id, id)",
          "CREATE INDEX IF NOT EXISTS call_log_tenant ON call_log (tenant_id, id)"]

_AUDIT_COLUMNS = "id, at, actor, action, target_type, target_id, tenant_id, key_name, source_ip, actor_email, details"
_CALL_COLUMNS = (
    "id, at, request_id, tenant_id, key_id, key_name, method, route, path, status, "
    "latency_ms, upstream_latency_ms, rate_limited, client_ip, error"
)


def records_path(cfg: Config) -> str:
    """The audit trail and call log live in the SQLite key store's file, or beside a remote store."""
    return cfg.store.sqlite_path or str(Path(cfg.data_dir) / "records.db")


def _ts(at: dt.datetime) -> str:
    """Sortable UTC text, as `strftime("%Y-%m-%dT%H:%M:%S.%fZ")` gives, at a fraction of its cost."""
    if at.utcoffset():
        at = at.astimezone(dt.UTC)
    return at.isoformat(timespec="microseconds")[:26] + "Z"  # C, without the "+00:00"


def _dt(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


class SQLiteRecordStore(SQLiteUsage):
    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self._path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        try:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self._path)
            await self._db.execute(f"PRAGMA busy_timeout={self._busy_ms}")  # first: workers open it together
            await self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a commit survives the process dying (the guarantee
            # the call log and audit trail give); only a power cut may lose the last commits.
            await self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                await self._db.execute(statement)
            for table, column, declaration in _COLUMNS:
                present = {row[1] for row in await self._db.execute_fetchall(f"PRAGMA table_info({table})")}
                if column not in present:
                    await self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for statement in _LATER:
                await self._db.execute(statement)
            await self._db.commit()
        except (OSError, aiosqlite.Error) as exc:
            await self.close()
            raise StoreError(f"cannot open record store {self._path}: {exc}") from None

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("record store is closed")
        return self._db

    async def _run(self, statements: Iterator[Statement], *, what: str = "record write") -> int:
        """Statements in one transaction; the rows they changed."""
        db = self._conn()
        changed = 0
        try:
            for sql, params in statements:
                cursor = await db.execute(sql, params)
                changed += max(0, cursor.rowcount)
            await db.commit()
        except BaseException as exc:
            # Also when cancelled (a flush asked for by an admin request that went away): the
            # statements already run would otherwise be committed by the next write, with the
            # same entries written again beside them.
            try:
                await db.rollback()  # queued behind the statement still running, if any
            except (aiosqlite.Error, asyncio.CancelledError):
                pass
            if isinstance(exc, aiosqlite.Error):
                raise StoreError(f"{what} failed: {exc}") from None
            raise
        return changed

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return list(await self._conn().execute_fetchall(sql, params))  # one thread trip, not three
        except aiosqlite.Error as exc:
            raise StoreError(f"record read failed: {exc}") from None

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        await self._run(inserts(
            "audit_log", ("at", "actor", "action", "target_type", "target_id", "tenant_id", "key_name", "source_ip",
                          "actor_email", "details"),
            entries,
            lambda chunk: [value for e in chunk for value in (
                _ts(e.at), e.actor, e.action, e.target_type, e.target_id, e.tenant_id, e.key_name, e.source_ip,
                e.actor_email, details_text(e.details))],
        ))

    async def list_audit(self, *, after: int | None, limit: int, newest_first: bool = False,
                         tenant_id: str | None = None, action: str | None = None) -> list[AuditEntry]:
        """Entries after the cursor, oldest first; or before it, newest first (for a console);
        with `tenant_id`, that tenant's only; with `action`, entries of that action only."""
        where: list[str] = []
        params: list[Any] = []
        if after is not None or not newest_first:
            where.append("id < ?" if newest_first else "id > ?")
            params.append(after or 0)
        if tenant_id is not None:
            where.append("tenant_id = ?")
            params.append(tenant_id)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        order = "DESC" if newest_first else "ASC"
        rows = await self._read(f"SELECT {_AUDIT_COLUMNS} FROM audit_log{clause} ORDER BY id {order} LIMIT ?",
                                (*params, limit))
        return [
            AuditEntry(id=r[0], at=_dt(r[1]), actor=r[2], action=r[3], target_type=r[4], target_id=r[5],
                       tenant_id=r[6], key_name=r[7], source_ip=r[8], actor_email=r[9], details=details_of(r[10]))
            for r in rows
        ]

    async def append_calls(self, rows: Sequence[CallRow], usage: Rollup | None = None) -> None:
        """Rows, and the usage they add up to, in one transaction: a batch written again after
        a failure is never counted twice."""
        await self._run(call_statements(rows, usage))

    async def list_calls(
        self, *, cursor: int | None, newest_first: bool, limit: int, key_id: str | None, status: int | None,
        tenant_id: str | None = None,
    ) -> list[CallEntry]:
        """Entries after the cursor, oldest first; or before it, newest first (for a console)."""
        where: list[str] = []
        params: list[Any] = []
        if cursor is not None:
            where.append("id < ?" if newest_first else "id > ?")
            params.append(cursor)
        if tenant_id is not None:  # call_log_tenant: a tenant scans its own rows only
            where.append("tenant_id = ?")
            params.append(tenant_id)
        if key_id is not None:
            where.append("key_id = ?")
            params.append(key_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        order = "DESC" if newest_first else "ASC"
        rows = await self._read(
            f"SELECT {_CALL_COLUMNS} FROM call_log{clause} ORDER BY id {order} LIMIT ?", (*params, limit)
        )
        return [
            CallEntry(id=r[0], at=_dt(r[1]), request_id=r[2], tenant_id=r[3], key_id=r[4], key_name=r[5],
                      method=r[6], route=r[7], path=r[8], status=r[9], latency_ms=r[10],
                      upstream_latency_ms=r[11], rate_limited=bool(r[12]), client_ip=r[13], error=r[14])
            for r in rows
        ]

    async def prune_calls(self, *, older_than: dt.datetime, max_rows: int) -> int:
        return await self._run(iter([
            ("DELETE FROM call_log WHERE at < ?", [_ts(older_than)]),
            ("DELETE FROM call_log WHERE id <= (SELECT id FROM call_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
             [max_rows]),
        ]), what="call log pruning")
