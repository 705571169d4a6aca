"""The embedded key store: SQLite through aiosqlite, WAL mode, versioned migrations on open.

Only the SHA-256 of each key is stored, with its display prefix and last four characters for
people to recognise it. Timestamps are fixed-width UTC text, so they sort as they compare.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.keystore import rows
from gateway.keystore.base import KEY_SORTS, TENANT_SORTS, DuplicateError, LastOwnerError, StoreError
from gateway.keystore.batch import BatchedLookup
from gateway.keystore.models import ApiKey, Principal, Tenant, User
from gateway.keystore.outbox import NewEvent
from gateway.keystore.outbox_sqlite import SQLiteWebhooks, event_statements
from gateway.keystore.portal_sqlite import SQLitePortalQueries
from gateway.keystore.rows import KEY_COLUMNS, TENANT_COLUMNS, USER_COLUMNS, key_params, order_by, status_case
from gateway.keystore.sqlite_times import parse_ts, ts

T = TypeVar("T")

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        """CREATE TABLE users (
            id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
            email TEXT, role TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        "CREATE INDEX users_tenant ON users (tenant_id)",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
            user_id TEXT REFERENCES users(id), name TEXT NOT NULL, display_prefix TEXT NOT NULL,
            last4 TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
            permissions TEXT NOT NULL, resources TEXT NOT NULL, environment TEXT NOT NULL,
            rate_limit_per_minute INTEGER, created_at TEXT NOT NULL, expires_at TEXT,
            last_used_at TEXT, revoked_at TEXT, replaced_by TEXT)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at)",
    ]),
    (2, [  # the audit trail's key.expired: written once per key, whichever instance sees it first
        # (a table of its own: api_keys keeps its shape for instances still on the previous version)
        "CREATE TABLE key_expiry_notes (key_id TEXT PRIMARY KEY, noted_at TEXT NOT NULL)",
        # what expired before this version is history, not news for the audit trail
        "INSERT INTO key_expiry_notes SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM api_keys "
        "WHERE expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        "CREATE INDEX api_keys_expires ON api_keys (expires_at)",
    ]),
    (3, [  # the tenant portal: the operator's gates, sign-ins, single-use links and sessions
        "ALTER TABLE tenants ADD COLUMN api_enabled INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE tenants ADD COLUMN write_enabled INTEGER NOT NULL DEFAULT 1",
        # apart from users: the hot path's principal join never reads password hashes
        """CREATE TABLE user_logins (
            user_id TEXT PRIMARY KEY REFERENCES users(id), email TEXT NOT NULL UNIQUE,
            password_hash TEXT, password_at TEXT)""",
        """CREATE TABLE portal_tokens (
            token_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)""",
        "CREATE INDEX portal_tokens_user ON portal_tokens (user_id)",
        """CREATE TABLE portal_sessions (
            id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), created_at TEXT NOT NULL,
            seen_at TEXT NOT NULL, expires_at TEXT NOT NULL, client_ip TEXT, user_agent TEXT)""",
        "CREATE INDEX portal_sessions_user ON portal_sessions (user_id)",
    ]),
    (4, [  # webhooks: endpoints, the transactional outbox of events, and their deliveries
        """CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY, url TEXT NOT NULL, tenant_id TEXT REFERENCES tenants(id), description TEXT,
            secret TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, disabled_reason TEXT,
            failing_since TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        "CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id)",
        """CREATE TABLE webhook_subscriptions (
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL, PRIMARY KEY (endpoint_id, event_type))""",
        """CREATE TABLE webhook_events (
            id TEXT PRIMARY KEY, type TEXT NOT NULL, tenant_id TEXT, created_at TEXT NOT NULL, payload TEXT NOT NULL)""",
        "CREATE INDEX webhook_events_created ON webhook_events (created_at)",
        """CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, retry_from TEXT NOT NULL,
            lease_until TEXT, lease_token TEXT, last_attempt_at TEXT, response_status INTEGER, error TEXT,
            created_at TEXT NOT NULL, delivered_at TEXT)""",
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
        "CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)",
        "CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)",
        # key.expiring: once per key and threshold (days), whichever instance sees it first
        """CREATE TABLE key_expiring_notes (
            key_id TEXT NOT NULL, threshold_days INTEGER NOT NULL, noted_at TEXT NOT NULL,
            PRIMARY KEY (key_id, threshold_days))""",
    ]),
    (5, [  # leaked keys: where a key was first seen exposed, and canary keys (planted to be found)
        # (nullable or defaulted: an instance still on the previous version inserts keys as before)
        "ALTER TABLE api_keys ADD COLUMN exposed_at TEXT",
        "ALTER TABLE api_keys ADD COLUMN exposure TEXT",
        "ALTER TABLE api_keys ADD COLUMN canary INTEGER NOT NULL DEFAULT 0",
    ]),
    (6, [  # webhook secret rotation: the replaced secret signs too until its grace period ends
        "ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT",
        "ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at TEXT",
    ]),
    (7, [  # an email signs in at most one person, but may be invited by several tenants meanwhile (an
        # invitation never tells a tenant that the address is another tenant's): the UNIQUE holds
        # for accepted logins only (SQLite drops a column's UNIQUE only by making the table again)
        """CREATE TABLE user_logins_v7 (
            user_id TEXT PRIMARY KEY REFERENCES users(id), email TEXT NOT NULL,
            password_hash TEXT, password_at TEXT)""",
        "INSERT INTO user_logins_v7 SELECT user_id, email, password_hash, password_at FROM user_logins",
        "DROP TABLE user_logins",
        "ALTER TABLE user_logins_v7 RENAME TO user_logins",
        "CREATE UNIQUE INDEX user_logins_signs_in ON user_logins (email) WHERE password_hash IS NOT NULL",
        "CREATE INDEX user_logins_email ON user_logins (email)",
    ]),
]

_TENANT, _USER, _KEY = TENANT_COLUMNS, USER_COLUMNS, KEY_COLUMNS
_STATUS = status_case(":now")


def tenant_row(r: Any, at: int = 0) -> Tenant:
    return rows.tenant_row(r, parse_ts, at)


def user_row(r: Any, at: int = 0) -> User:
    return rows.user_row(r, parse_ts, at)


def key_row(r: Any) -> ApiKey:
    return rows.key_row(r, parse_ts)


class SQLiteKeyStore(SQLitePortalQueries, SQLiteWebhooks):
    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._by_hash = BatchedLookup(self._principals_by_hash)
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

    # tenants

    async def create_tenant(self, tenant: Tenant, *, events: Sequence[NewEvent] = ()) -> Tenant:
        await self._write([(
            f"INSERT INTO tenants ({_TENANT.replace('t.', '')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant.id, tenant.name, tenant.plan, int(tenant.disabled), ts(tenant.created_at), ts(tenant.updated_at),
             int(tenant.api_enabled), int(tenant.write_enabled)),
        )], events=events)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._one(f"SELECT {_TENANT} FROM tenants t WHERE t.id = ?", (tenant_id,))
        return tenant_row(row) if row else None

    async def list_tenants(self, *, page: int, per_page: int, sort: str = "created_at") -> tuple[list[Tenant], int]:
        order = order_by(sort, TENANT_SORTS, "t")
        rows = await self._all(
            f"SELECT {_TENANT} FROM tenants t {order} LIMIT ? OFFSET ?", (per_page, (page - 1) * per_page)
        )
        total = (await self._one("SELECT COUNT(*) FROM tenants"))[0]
        return [tenant_row(r) for r in rows], total

    async def update_tenant(self, tenant_id: str, *, name: str | None = None, plan: str | None = None,
                            disabled: bool | None = None, api_enabled: bool | None = None,
                            write_enabled: bool | None = None, at: dt.datetime,
                            events: Sequence[NewEvent] = ()) -> Tenant | None:
        flags = {"disabled": disabled, "api_enabled": api_enabled, "write_enabled": write_enabled}
        changes: dict[str, Any] = {"name": name, "plan": plan,
                                   **{k: None if v is None else int(v) for k, v in flags.items()}}
        sets = [(k, v) for k, v in changes.items() if v is not None]
        assignments = ", ".join([f"{k} = ?" for k, _ in sets] + ["updated_at = ?"])
        await self._write([(f"UPDATE tenants SET {assignments} WHERE id = ?", (*[v for _, v in sets], ts(at), tenant_id))],
                          first_must_change=True, events=events)
        return await self.get_tenant(tenant_id)

    # users

    async def create_user(self, user: User, *, events: Sequence[NewEvent] = ()) -> User:
        await self._write([(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (user.id, user.tenant_id, user.name, user.email, user.role, int(user.disabled),
             ts(user.created_at), ts(user.updated_at)),
        )], events=events)
        return user

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one(f"SELECT {_USER} FROM users u WHERE u.id = ?", (user_id,))
        return user_row(row) if row else None

    async def list_users(self, tenant_id: str) -> list[User]:
        rows = await self._all(f"SELECT {_USER} FROM users u WHERE u.tenant_id = ? ORDER BY u.created_at, u.id", (tenant_id,))
        return [user_row(r) for r in rows]

    async def update_user(self, user_id: str, *, role: str | None = None, disabled: bool | None = None,
                          name: str | None = None, at: dt.datetime, events: Sequence[NewEvent] = (),
                          keep_owner: bool = False) -> User | None:
        changes = {"role": role, "name": name, "disabled": None if disabled is None else int(disabled)}
        sets = [(k, v) for k, v in changes.items() if v is not None]
        assignments = ", ".join([f"{k} = ?" for k, _ in sets] + ["updated_at = ?"])
        # BEGIN IMMEDIATE makes the owner condition and the change one step for every writer
        guarded = keep_owner and rows.demotes(role, disabled)
        where = f"id = ? AND {rows.KEEPS_AN_OWNER}" if guarded else "id = ?"
        statements: list[tuple[str, Any]] = [
            (f"UPDATE users SET {assignments} WHERE {where}", (*[v for _, v in sets], ts(at), user_id))]
        if disabled:  # in the same transaction: no session of a disabled user outlives the change
            statements.append(("DELETE FROM portal_sessions WHERE user_id = ?", (user_id,)))
        changed = await self._write(statements, first_must_change=True, events=events)
        user = await self.get_user(user_id)
        if changed is None and guarded and user is not None:  # users are never deleted: it was the owner rule
            raise LastOwnerError(f"{user_id} is the last owner of tenant {user.tenant_id}")
        return user

    # keys

    @staticmethod
    def _key_params(key: ApiKey) -> tuple[Any, ...]:
        return key_params(key, ts)

    _INSERT_KEY = f"INSERT INTO api_keys ({_KEY.replace('k.', '')}) VALUES ({', '.join('?' * rows.KEY_WIDTH)})"

    async def create_key(self, key: ApiKey, *, events: Sequence[NewEvent] = ()) -> ApiKey:
        await self._write([(self._INSERT_KEY, self._key_params(key))], events=events)
        return key

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._one(f"SELECT {_KEY} FROM api_keys k WHERE k.id = ?", (key_id,))
        return key_row(row) if row else None

    _PRINCIPAL = (f"SELECT {_KEY}, {_TENANT}, {_USER} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
                  "LEFT JOIN users u ON u.id = k.user_id WHERE ")

    async def _principal(self, where: str, value: str) -> Principal | None:
        row = await self._one(f"{self._PRINCIPAL}{where} = ?", (value,))
        return rows.principal_row(row, parse_ts) if row is not None else None

    async def _principals_by_hash(self, hashes: list[str]) -> dict[str, Principal | Exception]:
        marks = ", ".join("?" * len(hashes))
        found = await self._all(f"{self._PRINCIPAL}k.secret_hash IN ({marks})", hashes)
        return rows.principals_by_hash(found, parse_ts)

    async def get_principal_by_hash(self, secret_hash: str) -> Principal | None:
        return await self._by_hash.get(secret_hash)  # misses of one loop turn share one query

    async def get_principal_by_key_id(self, key_id: str) -> Principal | None:
        return await self._principal("k.id", key_id)

    async def list_keys(self, *, tenant_id: str | None = None, status: str | None = None, now: dt.datetime,
                        page: int, per_page: int, sort: str = "-created_at") -> tuple[list[ApiKey], int]:
        order = order_by(sort, KEY_SORTS, "k")
        where, params = ["1 = 1"], {"now": ts(now)}
        if tenant_id is not None:
            where.append("k.tenant_id = :tenant")
            params["tenant"] = tenant_id
        if status is not None:
            where.append("status = :status")
            params["status"] = status
        base = f"FROM (SELECT *, {_STATUS} AS status FROM api_keys k) k WHERE {' AND '.join(where)}"
        rows = await self._all(
            f"SELECT {_KEY} {base} {order} LIMIT :limit OFFSET :offset",
            {**params, "limit": per_page, "offset": (page - 1) * per_page},
        )
        total = (await self._one(f"SELECT COUNT(*) {base}", params))[0]
        return [key_row(r) for r in rows], total

    async def count_active_keys(self, tenant_id: str, now: dt.datetime) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (tenant_id, ts(now)),
        )
        return int(row[0])

    async def expired_unnoted(self, now: dt.datetime, limit: int, since: dt.datetime | None = None) -> list[str]:
        found = await self._all(
            "SELECT id FROM api_keys k WHERE expires_at > ? AND expires_at <= ? AND revoked_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM key_expiry_notes n WHERE n.key_id = k.id) LIMIT ?",
            (ts(since) if since else "", ts(now), limit))
        return [row[0] for row in found]

    async def note_expiry(self, key_id: str, *, events: Sequence[NewEvent] = ()) -> bool:
        done = await self._write([(
            "INSERT INTO key_expiry_notes VALUES (?, ?) ON CONFLICT DO NOTHING",
            (key_id, ts(dt.datetime.now(dt.UTC))))], first_must_change=True, events=events)
        return done is not None

    async def expiring_unnoted(self, now: dt.datetime, within: dt.timedelta, threshold_days: int,
                               limit: int) -> list[ApiKey]:
        rows = await self._all(
            f"SELECT {_KEY} FROM api_keys k WHERE k.expires_at > ? AND k.expires_at <= ? AND k.revoked_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM key_expiring_notes n WHERE n.key_id = k.id AND n.threshold_days = ?) "
            "ORDER BY k.expires_at LIMIT ?", (ts(now), ts(now + within), threshold_days, limit))
        return [key_row(r) for r in rows]

    async def note_expiring(self, key_id: str, thresholds: Sequence[int], at: dt.datetime, *,
                            events: Sequence[NewEvent] = ()) -> bool:
        noted = [("INSERT INTO key_expiring_notes VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (key_id, days, ts(at)))
                 for days in thresholds]
        return await self._write(noted, first_must_change=True, events=events) is not None

    async def revoke_key(self, key_id: str, at: dt.datetime, *, events: Sequence[NewEvent] = ()) -> ApiKey | None:
        await self._write([("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (ts(at), key_id))],
                          first_must_change=True, events=events)
        return await self.get_key(key_id)

    async def expose_key(self, key_id: str, exposure: Mapping[str, Any], at: dt.datetime, *, revoke: bool,
                         events: Sequence[NewEvent] = ()) -> bool:
        # Conditional on no exposure yet, in one transaction with the revocation and the events:
        # the first report wins, and any other (here or on another instance) changes nothing.
        statements: list[tuple[str, Any]] = [(
            "UPDATE api_keys SET exposed_at = ?, exposure = ? WHERE id = ? AND exposed_at IS NULL",
            (ts(at), json.dumps(dict(exposure)), key_id))]
        if revoke:
            statements.append(("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (ts(at), key_id)))
        return await self._write(statements, first_must_change=True, events=events) is not None

    async def rotate_key(self, old_id: str, new: ApiKey, at: dt.datetime, *, events: Sequence[NewEvent] = ()) -> ApiKey | None:
        # Conditional on the old key being live, in one transaction: two concurrent rotations
        # of one key leave one successor, not two.
        done = await self._write([
            ("UPDATE api_keys SET revoked_at = ?, replaced_by = ? WHERE id = ? AND revoked_at IS NULL",
             (ts(at), new.id, old_id)),
            (self._INSERT_KEY, self._key_params(new)),
        ], first_must_change=True, events=events)
        return new if done is not None else None

    async def record_last_used(self, times: Mapping[str, dt.datetime]) -> None:
        if not times:
            return
        # MAX semantics: several instances flushing never move a key's last use backwards.
        await self._write([
            ("UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
             (ts(at), key_id, ts(at)))
            for key_id, at in times.items()
        ])
