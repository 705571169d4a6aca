"""The SQLite store's connection: opening the file (WAL mode, the migrations applied in one write
transaction), reads, and writes as single transactions under one lock, with the events of the
outbox in the same transaction. The queries (`sqlite.py`, `accounts_sqlite.py`, `portal_sqlite.py`,
`outbox_sqlite.py`) build on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.keystore.base import DuplicateError, StoreError
from gateway.keystore.outbox import NewEvent
from gateway.keystore.outbox_sqlite import event_statements
from gateway.keystore.schema_sqlite import MIGRATIONS
from gateway.keystore.sqlite_times import ts

T = TypeVar("T")


class SQLiteDatabase:
    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.on_events: Callable[[], None] | None = None

    async def open(self) -> None:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if Path(self.path).is_dir():
                raise StoreError(f"cannot open key store {self.path}: it is a directory")
            self._db = await aiosqlite.connect(self.path)
            await self._db.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            await self._migrate()
        except StoreError:
            await self.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise StoreError(f"cannot open key store {self.path}: {exc}") from None

    async def _migrate(self) -> None:
        """Apply missing migrations in one write transaction: several workers opening a new file
        at once take turns (the first migrates, the others find it done) instead of racing."""
        db = self._conn()
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                             " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            async with db.execute("SELECT version FROM schema_migrations") as cur:
                done = {row[0] for row in await cur.fetchall()}
            for version, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?)", (version, ts(dt.datetime.now(dt.UTC)))
                )
            await db.commit()
        except BaseException:
            await self._rollback(db)
            raise

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            try:
                await db.close()
            except sqlite3.Error:
                pass

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("key store is not open")
        return self._db

    async def _all(self, sql: str, params: Any = ()) -> list[Any]:
        try:
            # one trip to aiosqlite's thread; execute, fetchall and the cursor's close were three
            return list(await self._conn().execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"key store read failed: {exc}") from None
        except ValueError as exc:  # aiosqlite: connection closed underneath us
            raise StoreError(f"key store unavailable: {exc}") from None

    async def _one(self, sql: str, params: Any = ()) -> Any:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, statements: list[tuple[str, Any]], *, first_must_change: bool = False,
                     events: Sequence[NewEvent] = ()) -> int | None:
        """Run the statements as one transaction; None (rolled back) if the first was a no-op
        and `first_must_change`. `events` join the same transaction (the outbox), so a change
        that commits always has its events, and one that does not never has them."""
        everything = statements + event_statements(events) if events else statements
        changed = await self._in_write(lambda db: self._transaction(db, everything, first_must_change))
        if events and changed is not None and self.on_events is not None:
            self.on_events()
        return changed

    async def _write_fetch(self, statements: list[tuple[str, Any]]) -> list[Any]:
        """The statements as one transaction; the rows of the last one (`... RETURNING`)."""
        return await self._in_write(lambda db: self._fetching_transaction(db, statements))

    async def _in_write(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """`work` (which begins and commits) under the lock that keeps another coroutine's
        statements out of its transaction.

        `BEGIN IMMEDIATE` takes the write lock first, waiting up to `busy_timeout` for another
        connection (the record writer, another worker, the CLI) to finish; a deferred transaction
        could instead fail at once when its snapshot went stale while it waited, so a refusal that
        still says busy is retried until the same deadline."""
        db = self._conn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_ms / 1000
        async with self._write_lock:
            while True:
                try:
                    return await work(db)
                except sqlite3.OperationalError as exc:
                    await self._rollback(db)
                    if ("locked" in str(exc) or "busy" in str(exc)) and loop.time() < deadline:
                        await asyncio.sleep(0.02)
                        continue
                    raise StoreError(f"key store write failed: {exc}") from None
                except sqlite3.IntegrityError as exc:
                    await self._rollback(db)
                    if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                        raise DuplicateError(str(exc)) from None
                    raise StoreError(f"key store write refused: {exc}") from None
                except sqlite3.Error as exc:
                    await self._rollback(db)
                    raise StoreError(f"key store write failed: {exc}") from None
                except ValueError as exc:
                    raise StoreError(f"key store unavailable: {exc}") from None
                except BaseException:  # cancelled mid-transaction: nothing half-written stays open
                    await self._rollback(db)
                    raise

    @staticmethod
    async def _transaction(db: aiosqlite.Connection, statements: list[tuple[str, Any]], first_must_change: bool) -> int | None:
        changed = 0
        await db.execute("BEGIN IMMEDIATE")
        for i, (sql, params) in enumerate(statements):
            cur = await db.execute(sql, params)
            if first_must_change and i == 0 and cur.rowcount < 1:
                await db.rollback()
                return None
            changed += max(cur.rowcount, 0)
        await db.commit()
        return changed

    @staticmethod
    async def _fetching_transaction(db: aiosqlite.Connection, statements: list[tuple[str, Any]]) -> list[Any]:
        await db.execute("BEGIN IMMEDIATE")
        rows: list[Any] = []
        for sql, params in statements:
            rows = list(await db.execute_fetchall(sql, params))
        await db.commit()
        return rows

    @staticmethod
    async def _rollback(db: aiosqlite.Connection) -> None:
        try:
            await db.rollback()
        except (sqlite3.Error, ValueError):
            pass

    async def ping(self) -> None:
        await self._one("SELECT 1 FROM schema_migrations LIMIT 1")  # reads the file, not just the engine
