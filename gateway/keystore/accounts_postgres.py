"""Tenants and users in the PostgreSQL store.

A mixin of `PostgresKeyStore` (its pool and transactions, `database_postgres.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.keystore import rows
from gateway.keystore.base import TENANT_SORTS, LastOwnerError
from gateway.keystore.models import Tenant, User
from gateway.keystore.outbox import NewEvent
from gateway.keystore.postgres_times import utc
from gateway.keystore.rows import TENANT_COLUMNS, USER_COLUMNS, order_by

_TENANT, _USER = TENANT_COLUMNS, USER_COLUMNS

# Whoever changes a tenant's owners under `keep_owner` holds this first. NO KEY UPDATE: a key or
# user inserted meanwhile (FOR KEY SHARE on the tenant, through its foreign key) does not wait.
_LOCK_TENANT_OF_USER = "SELECT 1 FROM tenants WHERE id = (SELECT tenant_id FROM users WHERE id = $1) FOR NO KEY UPDATE"


def tenant_row(r: Any, at: int = 0) -> Tenant:
    return rows.tenant_row(r, utc, at)


def user_row(r: Any, at: int = 0) -> User:
    return rows.user_row(r, utc, at)


class PostgresAccountQueries:
    if TYPE_CHECKING:
        async def _write(self, statements: list[tuple[str, tuple[Any, ...]]], *, first_must_change: bool = False,
                         events: Sequence[NewEvent] = (), lock: tuple[str, tuple[Any, ...]] | None = None) -> bool: ...
        async def _one(self, sql: str, *args: Any) -> Any: ...
        async def _fetch(self, sql: str, *args: Any) -> list[Any]: ...

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
