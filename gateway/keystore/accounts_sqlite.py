"""Tenants and users in the SQLite store.

A mixin of `SQLiteKeyStore` (its connection, write lock and transactions, `database_sqlite.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.keystore import rows
from gateway.keystore.base import TENANT_SORTS, LastOwnerError
from gateway.keystore.models import Tenant, User
from gateway.keystore.outbox import NewEvent
from gateway.keystore.rows import TENANT_COLUMNS, USER_COLUMNS, order_by
from gateway.keystore.sqlite_times import parse_ts, ts

_TENANT, _USER = TENANT_COLUMNS, USER_COLUMNS


def tenant_row(r: Any, at: int = 0) -> Tenant:
    return rows.tenant_row(r, parse_ts, at)


def user_row(r: Any, at: int = 0) -> User:
    return rows.user_row(r, parse_ts, at)


class SQLiteAccountQueries:
    if TYPE_CHECKING:
        async def _write(self, statements: list[tuple[str, Any]], *, first_must_change: bool = False,
                         events: Sequence[NewEvent] = ()) -> int | None: ...
        async def _one(self, sql: str, params: Any = ()) -> Any: ...
        async def _all(self, sql: str, params: Any = ()) -> list[Any]: ...

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
