"""The PostgreSQL store's connection: the asyncpg pool (in the schema `?schema=` names), the
migrations applied on open, reads, and writes as single transactions with the events of the
outbox in the same transaction. The queries (`postgres.py`, `accounts_postgres.py`,
`portal_postgres.py`, `outbox_postgres.py`) build on it; the call log's store shares the pool's
making and the outage errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from gateway.keystore.base import DuplicateError, StoreError
from gateway.keystore.outbox import NewEvent
from gateway.keystore.outbox_postgres import event_statements
from gateway.keystore.schema_postgres import MIGRATION_LOCK, MIGRATIONS

# What a broken connection or an unreachable server looks like from asyncpg.
# InternalClientError: a connection killed mid-operation can leave asyncpg's protocol state
# inconsistent; the pool discards that connection, and the request gets a 503 like any outage.
UNAVAILABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
               asyncpg.CannotConnectNowError, asyncpg.InternalClientError)


def connect_args(url: str) -> tuple[str, str | None]:
    """The DSN for asyncpg and the schema named by `?schema=` (kept out of the DSN)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.pop("schema", [None])[0]
    rest = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
    dsn = parts._replace(scheme="postgresql", query=rest).geturl()
    return dsn, schema


async def create_pool(dsn: str, schema: str | None, *, min_size: int, max_size: int, timeout: float) -> asyncpg.Pool:
    """A pool whose connections work in `schema` (created if missing), or in the default one."""
    if schema:
        conn = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except asyncpg.UniqueViolationError:
            pass  # another instance created it at the same moment
        finally:
            await conn.close()
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, timeout=timeout, command_timeout=timeout,
        server_settings={"search_path": schema} if schema else None,
    )


class PostgresDatabase:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 5.0) -> None:
        self.url = url
        self._dsn, self.schema = connect_args(url)
        self._min, self._max = min_size, max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self.on_events: Callable[[], None] | None = None

    def where(self) -> str:
        """The server and database, without credentials, for messages."""
        return urlsplit(self._dsn)._replace(netloc=urlsplit(self._dsn).hostname or "").geturl()

    async def open(self) -> None:
        try:
            self._pool = await create_pool(self._dsn, self.schema, min_size=self._min, max_size=self._max,
                                           timeout=self._timeout)
            await self._migrate()
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            await self.close()
            raise StoreError(f"cannot open key store {self.where()}: {exc}") from None

    async def _migrate(self) -> None:
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, now())", version)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except (*UNAVAILABLE, asyncpg.PostgresError):
                pool.terminate()

    def _acquire(self) -> Any:
        if self._pool is None:
            raise StoreError("key store is not open")
        return self._pool.acquire(timeout=self._timeout)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            async with self._acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"key store read failed: {exc}") from None

    async def _one(self, sql: str, *args: Any) -> Any:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    async def _write(self, statements: list[tuple[str, tuple[Any, ...]]], *, first_must_change: bool = False,
                     events: Sequence[NewEvent] = (), lock: tuple[str, tuple[Any, ...]] | None = None) -> bool:
        """The statements in one transaction; False (rolled back) if `first_must_change` and the
        first statement changed no row. `events` join the same transaction (the outbox), so a
        change that commits always has its events, and one that does not never has them. `lock`
        runs first (a `SELECT ... FOR UPDATE`): the statements after it, each with a fresh
        snapshot (READ COMMITTED), see what the lock's previous holder committed."""
        everything = statements + event_statements(events) if events else statements
        try:
            async with self._acquire() as conn, conn.transaction():
                if lock is not None:
                    await conn.execute(lock[0], *lock[1])
                for i, (sql, args) in enumerate(everything):
                    status = await conn.execute(sql, *args)
                    if first_must_change and i == 0 and status.endswith(" 0"):
                        raise _NoChange()
        except _NoChange:
            return False
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateError(str(exc)) from None
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise StoreError(f"key store write refused: {exc}") from None
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"key store write failed: {exc}") from None
        if events and self.on_events is not None:
            self.on_events()
        return True

    async def _write_fetch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """The statements in one transaction; the rows of the last one (`... RETURNING`)."""
        try:
            async with self._acquire() as conn, conn.transaction():
                rows: list[Any] = []
                for sql, args in statements:
                    rows = list(await conn.fetch(sql, *args))
                return rows
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StoreError(f"key store write failed: {exc}") from None

    async def ping(self) -> None:
        await self._one("SELECT 1")


class _NoChange(Exception):
    """Rolls back a transaction whose guarding statement matched nothing."""
