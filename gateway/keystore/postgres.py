"""The shared key store: PostgreSQL through an asyncpg pool, for several gateway instances.

Same protocol and conformance suite as the SQLite store. Migrations run on open under an
advisory lock, so instances starting together apply each version once. Timestamps are
`timestamptz`, permissions and resources `jsonb`; only the SHA-256 of each key is stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from gateway.keystore import rows
from gateway.keystore.base import KEY_SORTS, TENANT_SORTS, DuplicateError, LastOwnerError, StoreError
from gateway.keystore.batch import BatchedLookup
from gateway.keystore.models import ApiKey, Principal, Tenant, User
from gateway.keystore.outbox import NewEvent
from gateway.keystore.outbox_postgres import PostgresWebhooks, event_statements
from gateway.keystore.portal_postgres import PostgresPortalQueries
from gateway.keystore.rows import KEY_COLUMNS, TENANT_COLUMNS, USER_COLUMNS, key_params, order_by, status_case

MIGRATION_LOCK = 0x67617465  # pg_advisory_lock key shared by every gateway ("gate")

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE users (
            id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
            email TEXT, role TEXT NOT NULL, disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
        "CREATE INDEX users_tenant ON users (tenant_id)",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),
            user_id TEXT REFERENCES users(id), name TEXT NOT NULL, display_prefix TEXT NOT NULL,
            last4 TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
            permissions JSONB NOT NULL, resources JSONB NOT NULL, environment TEXT NOT NULL,
            rate_limit_per_minute INTEGER, created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ,
            last_used_at TIMESTAMPTZ, revoked_at TIMESTAMPTZ, replaced_by TEXT)""",
        "CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at)",
    ]),
    (2, [  # the audit trail's key.expired: written once per key, whichever instance sees it first
        # (a table of its own: api_keys keeps its shape for instances still on the previous version)
        "CREATE TABLE key_expiry_notes (key_id TEXT PRIMARY KEY, noted_at TIMESTAMPTZ NOT NULL)",
        # what expired before this version is history, not news for the audit trail
        "INSERT INTO key_expiry_notes SELECT id, now() FROM api_keys WHERE expires_at <= now()",
        "CREATE INDEX api_keys_expires ON api_keys (expires_at)",
    ]),
    (3, [  # the tenant portal: the operator's gates, sign-ins, single-use links and sessions
        # (columns with defaults: an instance still on the previous version inserts tenants as before)
        "ALTER TABLE tenants ADD COLUMN api_enabled BOOLEAN NOT NULL DEFAULT TRUE",
        "ALTER TABLE tenants ADD COLUMN write_enabled BOOLEAN NOT NULL DEFAULT TRUE",
        # apart from users: the hot path's principal join never reads password hashes
        """CREATE TABLE user_logins (
            user_id TEXT PRIMARY KEY REFERENCES users(id), email TEXT NOT NULL UNIQUE,
            password_hash TEXT, password_at TIMESTAMPTZ)""",
        """CREATE TABLE portal_tokens (
            token_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id),
            created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL, used_at TIMESTAMPTZ)""",
        "CREATE INDEX portal_tokens_user ON portal_tokens (user_id)",
        """CREATE TABLE portal_sessions (
            id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
            created_at TIMESTAMPTZ NOT NULL, seen_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL,
            client_ip TEXT, user_agent TEXT)""",
        "CREATE INDEX portal_sessions_user ON portal_sessions (user_id)",
    ]),
    (4, [  # webhooks: endpoints, the transactional outbox of events, and their deliveries
        """CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY, url TEXT NOT NULL, tenant_id TEXT REFERENCES tenants(id), description TEXT,
            secret TEXT NOT NULL, disabled BOOLEAN NOT NULL DEFAULT FALSE, disabled_reason TEXT,
            failing_since TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
        "CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id)",
        """CREATE TABLE webhook_subscriptions (
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL, PRIMARY KEY (endpoint_id, event_type))""",
        """CREATE TABLE webhook_events (
            id TEXT PRIMARY KEY, type TEXT NOT NULL, tenant_id TEXT, created_at TIMESTAMPTZ NOT NULL,
            payload TEXT NOT NULL)""",
        "CREATE INDEX webhook_events_created ON webhook_events (created_at)",
        """CREATE TABLE webhook_deliveries (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMPTZ,
            retry_from TIMESTAMPTZ NOT NULL, lease_until TIMESTAMPTZ, lease_token TEXT,
            last_attempt_at TIMESTAMPTZ, response_status INTEGER, error TEXT,
            created_at TIMESTAMPTZ NOT NULL, delivered_at TIMESTAMPTZ)""",
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
        "CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)",
        "CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)",
        # key.expiring: once per key and threshold (days), whichever instance sees it first
        """CREATE TABLE key_expiring_notes (
            key_id TEXT NOT NULL, threshold_days INTEGER NOT NULL, noted_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (key_id, threshold_days))""",
    ]),
    (5, [  # leaked keys: where a key was first seen exposed, and canary keys (planted to be found)
        # (nullable or defaulted: an instance still on the previous version inserts keys as before)
        "ALTER TABLE api_keys ADD COLUMN exposed_at TIMESTAMPTZ",
        "ALTER TABLE api_keys ADD COLUMN exposure TEXT",
        "ALTER TABLE api_keys ADD COLUMN canary BOOLEAN NOT NULL DEFAULT FALSE",
    ]),
    (6, [  # webhook secret rotation: the replaced secret signs too until its grace period ends
        "ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT",
        "ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at TIMESTAMPTZ",
    ]),
    (7, [  # an email signs in at most one person, but may be invited by several tenants meanwhile (an
        # invitation never tells a tenant that the address is another tenant's): unique when accepted
        "ALTER TABLE user_logins DROP CONSTRAINT user_logins_email_key",
        "CREATE UNIQUE INDEX user_logins_signs_in ON user_logins (email) WHERE password_hash IS NOT NULL",
        "CREATE INDEX user_logins_email ON user_logins (email)",
    ]),
]

_TENANT, _USER, _KEY = TENANT_COLUMNS, USER_COLUMNS, KEY_COLUMNS
_STATUS = status_case("$1")

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


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def tenant_row(r: Any, at: int = 0) -> Tenant:
    return rows.tenant_row(r, _utc, at)


def user_row(r: Any, at: int = 0) -> User:
    return rows.user_row(r, _utc, at)


def key_row(r: Any) -> ApiKey:
    return rows.key_row(r, _utc)


class PostgresKeyStore(PostgresPortalQueries, PostgresWebhooks):
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 5.0) -> None:
        self.url = url
        self._dsn, self.schema = connect_args(url)
        self._min, self._max = min_size, max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._by_hash = BatchedLookup(self._principals_by_hash)
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

    # tenants

    async def create_tenant(self, tenant: Tenant, *, events: Sequence[NewEvent] = ()) -> Tenant:
        await self._write([(f"INSERT INTO tenants ({_TENANT.replace('t.', '')}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            (tenant.id, tenant.name, tenant.plan, tenant.disabled, tenant.created_at,
                             tenant.updated_at, tenant.api_enabled, tenant.write_enabled))], events=events)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._one(f"SELECT {_TENANT} FROM tenants t WHERE t.id = $1", tenant_id)
        return tenant_row(row) if row else None

    async def list_tenants(self, *, page: int, per_page: int, sort: str = "created_at") -> tuple[list[Tenant], int]:
        order = order_by(sort, TENANT_SORTS, "t")
        rows = await self._fetch(
            f"SELECT {_TENANT}, COUNT(*) OVER () FROM tenants t {order} LIMIT $1 OFFSET $2",
            per_page, (page - 1) * per_page,
        )
        total = rows[0][-1] if rows else (await self._one("SELECT COUNT(*) FROM tenants"))[0]
        return [tenant_row(r) for r in rows], int(total)

    async def update_tenant(self, tenant_id: str, *, name: str | None = None, plan: str | None = None,
                            disabled: bool | None = None, api_enabled: bool | None = None,
                            write_enabled: bool | None = None, at: dt.datetime,
                            events: Sequence[NewEvent] = ()) -> Tenant | None:
        await self._update("tenants", tenant_id, {"name": name, "plan": plan, "disabled": disabled,
                                                  "api_enabled": api_enabled, "write_enabled": write_enabled}, at,
                           events=events)
        return await self.get_tenant(tenant_id)

    async def _update(self, table: str, row_id: str, changes: dict[str, Any], at: dt.datetime,
                      also: tuple[tuple[str, tuple[Any, ...]], ...] = (), events: Sequence[NewEvent] = (),
                      condition: str = "", lock: tuple[str, tuple[Any, ...]] | None = None) -> bool:
        sets = [(k, v) for k, v in changes.items() if v is not None] + [("updated_at", at)]
        assignments = ", ".join(f"{k} = ${i}" for i, (k, _) in enumerate(sets, start=2))
        where = f"id = $1 AND {condition}" if condition else "id = $1"
        return await self._write([(f"UPDATE {table} SET {assignments} WHERE {where}", (row_id, *[v for _, v in sets])),
                                  *also], first_must_change=True, events=events, lock=lock)

    # users

    async def create_user(self, user: User, *, events: Sequence[NewEvent] = ()) -> User:
        await self._write([("INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            (user.id, user.tenant_id, user.name, user.email, user.role, user.disabled,
                             user.created_at, user.updated_at))], events=events)
        return user

    async def get_user(self, user_id: str) -> User | None:
        row = await self._one(f"SELECT {_USER} FROM users u WHERE u.id = $1", user_id)
        return user_row(row) if row else None

    async def list_users(self, tenant_id: str) -> list[User]:
        rows = await self._fetch(
            f"SELECT {_USER} FROM users u WHERE u.tenant_id = $1 ORDER BY u.created_at, u.id", tenant_id
        )
        return [user_row(r) for r in rows]

    async def update_user(self, user_id: str, *, role: str | None = None, disabled: bool | None = None,
                          name: str | None = None, at: dt.datetime, events: Sequence[NewEvent] = (),
                          keep_owner: bool = False) -> User | None:
        # in the same transaction: no session of a disabled user outlives the change
        also = (("DELETE FROM portal_sessions WHERE user_id = $1", (user_id,)),) if disabled else ()
        # Two demotions of a tenant's two owners, each seeing the other still an owner, would both
        # pass a bare condition (each its own snapshot); the tenant's row lock makes them take turns.
        guarded = keep_owner and rows.demotes(role, disabled)
        changed = await self._update("users", user_id, {"role": role, "name": name, "disabled": disabled}, at, also,
                                     events, condition=rows.KEEPS_AN_OWNER if guarded else "",
                                     lock=(_LOCK_TENANT_OF_USER, (user_id,)) if guarded else None)
        user = await self.get_user(user_id)
        if not changed and guarded and user is not None:  # users are never deleted: it was the owner rule
            raise LastOwnerError(f"{user_id} is the last owner of tenant {user.tenant_id}")
        return user

    # keys

    @staticmethod
    def _key_params(key: ApiKey) -> tuple[Any, ...]:
        return key_params(key, lambda at: at)

    _INSERT_KEY = (f"INSERT INTO api_keys ({KEY_COLUMNS.replace('k.', '')}) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, "
                   "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20)")

    async def create_key(self, key: ApiKey, *, events: Sequence[NewEvent] = ()) -> ApiKey:
        await self._write([(self._INSERT_KEY, self._key_params(key))], events=events)
        return key

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._one(f"SELECT {_KEY_TEXT} FROM api_keys k WHERE k.id = $1", key_id)
        return key_row(row) if row else None

    async def _principal(self, where: str, value: str) -> Principal | None:
        row = await self._one(f"{_PRINCIPAL}{where} = $1", value)
        return rows.principal_row(row, _utc) if row is not None else None

    async def _principals_by_hash(self, hashes: list[str]) -> dict[str, Principal | Exception]:
        found = await self._fetch(f"{_PRINCIPAL}k.secret_hash = ANY($1::text[])", hashes)
        return rows.principals_by_hash(found, _utc)

    async def get_principal_by_hash(self, secret_hash: str) -> Principal | None:
        return await self._by_hash.get(secret_hash)  # misses of one loop turn share one query

    async def get_principal_by_key_id(self, key_id: str) -> Principal | None:
        return await self._principal("k.id", key_id)

    async def list_keys(self, *, tenant_id: str | None = None, status: str | None = None, now: dt.datetime,
                        page: int, per_page: int, sort: str = "-created_at") -> tuple[list[ApiKey], int]:
        order = order_by(sort, KEY_SORTS, "k")
        where, args = ["TRUE"], [now]
        if tenant_id is not None:
            args.append(tenant_id)  # type: ignore[arg-type]
            where.append(f"k.tenant_id = ${len(args)}")
        if status is not None:
            args.append(status)  # type: ignore[arg-type]
            where.append(f"status = ${len(args)}")
        base = f"FROM (SELECT *, {_STATUS} AS status FROM api_keys k) k WHERE {' AND '.join(where)}"
        rows = await self._fetch(
            f"SELECT {_KEY_TEXT}, COUNT(*) OVER () {base} {order} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
            *args, per_page, (page - 1) * per_page,
        )
        total = rows[0][-1] if rows else (await self._one(f"SELECT COUNT(*) {base}", *args))[0]
        return [key_row(r) for r in rows], int(total)

    async def count_active_keys(self, tenant_id: str, now: dt.datetime) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > $2)",
            tenant_id, now,
        )
        return int(row[0])

    async def expired_unnoted(self, now: dt.datetime, limit: int, since: dt.datetime | None = None) -> list[str]:
        found = await self._fetch(
            "SELECT id FROM api_keys k WHERE expires_at > $3 AND expires_at <= $1 AND revoked_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM key_expiry_notes n WHERE n.key_id = k.id) LIMIT $2",
            now, limit, since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
        return [row[0] for row in found]

    async def note_expiry(self, key_id: str, *, events: Sequence[NewEvent] = ()) -> bool:
        return await self._write([("INSERT INTO key_expiry_notes VALUES ($1, now()) ON CONFLICT DO NOTHING",
                                   (key_id,))], first_must_change=True, events=events)

    async def expiring_unnoted(self, now: dt.datetime, within: dt.timedelta, threshold_days: int,
                               limit: int) -> list[ApiKey]:
        rows = await self._fetch(
            f"SELECT {_KEY_TEXT} FROM api_keys k WHERE k.expires_at > $1 AND k.expires_at <= $2 "
            "AND k.revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM key_expiring_notes n WHERE n.key_id = k.id "
            "AND n.threshold_days = $3) ORDER BY k.expires_at LIMIT $4", now, now + within, threshold_days, limit)
        return [key_row(r) for r in rows]

    async def note_expiring(self, key_id: str, thresholds: Sequence[int], at: dt.datetime, *,
                            events: Sequence[NewEvent] = ()) -> bool:
        noted = [("INSERT INTO key_expiring_notes VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", (key_id, days, at))
                 for days in thresholds]
        return await self._write(noted, first_must_change=True, events=events)

    async def revoke_key(self, key_id: str, at: dt.datetime, *, events: Sequence[NewEvent] = ()) -> ApiKey | None:
        await self._write([("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", (key_id, at))],
                          first_must_change=True, events=events)
        return await self.get_key(key_id)

    async def expose_key(self, key_id: str, exposure: Mapping[str, Any], at: dt.datetime, *, revoke: bool,
                         events: Sequence[NewEvent] = ()) -> bool:
        # Conditional on no exposure yet, in one transaction with the revocation and the events:
        # the first report wins, and any other (on any instance) changes nothing.
        statements: list[tuple[str, tuple[Any, ...]]] = [(
            "UPDATE api_keys SET exposed_at = $2, exposure = $3 WHERE id = $1 AND exposed_at IS NULL",
            (key_id, at, json.dumps(dict(exposure))))]
        if revoke:
            statements.append(("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", (key_id, at)))
        return await self._write(statements, first_must_change=True, events=events)

    async def rotate_key(self, old_id: str, new: ApiKey, at: dt.datetime, *, events: Sequence[NewEvent] = ()) -> ApiKey | None:
        # Conditional on the old key being live, in one transaction: two concurrent rotations
        # of one key (on any instances) leave one successor, not two.
        done = await self._write([
            ("UPDATE api_keys SET revoked_at = $2, replaced_by = $3 WHERE id = $1 AND revoked_at IS NULL",
             (old_id, at, new.id)),
            (self._INSERT_KEY, self._key_params(new)),
        ], first_must_change=True, events=events)
        return new if done else None

    async def record_last_used(self, times: Mapping[str, dt.datetime]) -> None:
        if not times:
            return
        # One statement for the batch; GREATEST keeps several instances' flushes from moving a
        # key's last use backwards, whatever order they commit in.
        ids, stamps = list(times), list(times.values())
        await self._write([(
            "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, v.at) "
            "FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at) WHERE k.id = v.id",
            (ids, stamps),
        )])


class _NoChange(Exception):
    """Rolls back a transaction whose guarding statement matched nothing."""


# Whoever changes a tenant's owners under `keep_owner` holds this first. NO KEY UPDATE: a key or
# user inserted meanwhile (FOR KEY SHARE on the tenant, through its foreign key) does not wait.
_LOCK_TENANT_OF_USER = "SELECT 1 FROM tenants WHERE id = (SELECT tenant_id FROM users WHERE id = $1) FOR NO KEY UPDATE"


# jsonb comes back as text with asyncpg's default codecs; keys are read by position.
_KEY_TEXT = _KEY.replace("k.permissions", "k.permissions::text").replace("k.resources", "k.resources::text")
_PRINCIPAL = (f"SELECT {_KEY_TEXT}, {_TENANT}, {_USER} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
              "LEFT JOIN users u ON u.id = k.user_id WHERE ")
