"""The tenant portal's rows in the PostgreSQL store: sign-ins, single-use links and sessions.

A mixin of `PostgresKeyStore` (its pool and transactions), the same queries as the SQLite one.
Only SHA-256 hashes of link tokens and session ids, and argon2id hashes of passwords, are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.keystore import rows
from gateway.keystore.base import DuplicateError
from gateway.keystore.models import Login, PortalSession, PortalToken, SessionView, User
from gateway.keystore.outbox import NewEvent
from gateway.keystore.postgres_times import utc

# $1 token hash, $2 purpose, $3 now
_VALID_TOKEN = ("token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 AND user_id IN "
                "(SELECT u.id FROM users u JOIN tenants t ON t.id = u.tenant_id "
                "WHERE NOT u.disabled AND NOT t.disabled)")
_TOKEN_USER = "(SELECT user_id FROM portal_tokens WHERE token_hash = $1)"


class PostgresPortalQueries:
    if TYPE_CHECKING:
        async def _write(self, statements: list[tuple[str, tuple[Any, ...]]], *,
                         first_must_change: bool = False, events: Sequence[NewEvent] = ()) -> bool: ...
        async def _one(self, sql: str, *args: Any) -> Any: ...
        async def _fetch(self, sql: str, *args: Any) -> list[Any]: ...
        async def get_user(self, user_id: str) -> User | None: ...

    async def create_invited_user(self, user: User, email: str, token: PortalToken, *,
                                  events: Sequence[NewEvent] = ()) -> User:
        """The user, their sign-in email (no password yet) and the invitation, in one transaction;
        `DuplicateError` when the email is already someone's in the same tenant (another tenant's
        person is no obstacle, nor told: see migration 7)."""
        made = await self._write([
            ("INSERT INTO users (id, tenant_id, name, email, role, disabled, created_at, updated_at) "
             "SELECT $1, $2, $3, $4, $5, $6::boolean, $7::timestamptz, $8::timestamptz WHERE NOT EXISTS "
             "(SELECT 1 FROM user_logins l JOIN users u ON u.id = l.user_id WHERE u.tenant_id = $2 AND l.email = $9)",
             (user.id, user.tenant_id, user.name, user.email, user.role, user.disabled, user.created_at,
              user.updated_at, email)),
            ("INSERT INTO user_logins (user_id, email) VALUES ($1, $2)", (user.id, email)),
            _insert_token(token),
        ], first_must_change=True, events=events)
        if not made:
            raise DuplicateError(f"{email} is already a user of tenant {user.tenant_id}")
        return user

    async def add_token(self, token: PortalToken) -> None:
        """A new link for the user; their earlier unused links of the same purpose stop working."""
        await self._write([
            ("UPDATE portal_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
             (token.created_at, token.user_id, token.purpose)),
            _insert_token(token),
        ])

    async def login_by_email(self, email: str) -> Login | None:
        row = await self._one(rows.LOGIN_SELECT + "l.email = $1" + rows.SIGNS_IN_FIRST, email)
        return rows.login_row(row, utc) if row else None

    async def login_of(self, user_id: str) -> Login | None:
        row = await self._one(rows.LOGIN_SELECT + "l.user_id = $1", user_id)
        return rows.login_row(row, utc) if row else None

    async def logins_of_tenant(self, tenant_id: str) -> list[Login]:
        found = await self._fetch(rows.LOGIN_SELECT + "u.tenant_id = $1 ORDER BY u.created_at, u.id", tenant_id)
        return [rows.login_row(r, utc) for r in found]

    async def token_login(self, token_hash: str, purpose: str, now: dt.datetime) -> Login | None:
        """Whose link this is, while it can still be used."""
        row = await self._one(
            rows.LOGIN_SELECT + f"l.user_id IN (SELECT user_id FROM portal_tokens WHERE {_VALID_TOKEN})",
            token_hash, purpose, now)
        return rows.login_row(row, utc) if row else None

    async def redeem_token(self, token_hash: str, purpose: str, now: dt.datetime, password_hash: str,
                           name: str | None = None, *, events: Sequence[NewEvent] = ()) -> User | None:
        """Spend a valid link and set the password, in one transaction; None when the link was
        unknown, used, expired, or its user or tenant is disabled. Every other link and session
        of the user ends with it."""
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (f"UPDATE portal_tokens SET used_at = $3 WHERE {_VALID_TOKEN}", (token_hash, purpose, now)),
            (f"UPDATE user_logins SET password_hash = $2, password_at = $3 WHERE user_id = {_TOKEN_USER}",
             (token_hash, password_hash, now)),
            (f"UPDATE portal_tokens SET used_at = $2 WHERE user_id = {_TOKEN_USER} AND used_at IS NULL",
             (token_hash, now)),
            (f"DELETE FROM portal_sessions WHERE user_id = {_TOKEN_USER}", (token_hash,)),
        ]
        if name is not None:
            statements.append((f"UPDATE users SET name = $2, updated_at = $3 WHERE id = {_TOKEN_USER}",
                               (token_hash, name, now)))
        if not await self._write(statements, first_must_change=True, events=events):
            return None
        row = await self._one("SELECT user_id FROM portal_tokens WHERE token_hash = $1", token_hash)
        return await self.get_user(row[0]) if row else None

    async def set_password(self, user_id: str, password_hash: str, at: dt.datetime) -> None:
        await self._write([("UPDATE user_logins SET password_hash = $2, password_at = $3 WHERE user_id = $1",
                            (user_id, password_hash, at))])

    async def put_login(self, user_id: str, email: str, password_hash: str | None) -> None:
        """A login as it is (`gateway store migrate`)."""
        await self._write([("INSERT INTO user_logins (user_id, email, password_hash) VALUES ($1, $2, $3)",
                            (user_id, email, password_hash))])

    async def create_session(self, session: PortalSession, *, replaces: str | None = None) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [(
            "INSERT INTO portal_sessions (id_hash, user_id, created_at, seen_at, expires_at, client_ip, user_agent) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            (session.id_hash, session.user_id, session.created_at, session.seen_at, session.expires_at,
             session.client_ip, session.user_agent))]
        if replaces is not None:
            statements.append(("DELETE FROM portal_sessions WHERE id_hash = $1", (replaces,)))
        await self._write(statements)

    async def get_session(self, id_hash: str) -> SessionView | None:
        row = await self._one(rows.SESSION_SELECT + "$1", id_hash)
        return rows.session_row(row, utc) if row else None

    async def touch_session(self, id_hash: str, at: dt.datetime) -> None:
        await self._write([("UPDATE portal_sessions SET seen_at = $2 WHERE id_hash = $1 AND seen_at < $2",
                            (id_hash, at))])

    async def delete_session(self, id_hash: str) -> None:
        await self._write([("DELETE FROM portal_sessions WHERE id_hash = $1", (id_hash,))])

    async def delete_user_sessions(self, user_id: str) -> None:
        await self._write([("DELETE FROM portal_sessions WHERE user_id = $1", (user_id,))])

    async def purge_portal(self, now: dt.datetime, idle_before: dt.datetime) -> None:
        """Sessions past either timeout and links past their expiry: nothing in them can be used."""
        await self._write([
            ("DELETE FROM portal_sessions WHERE expires_at <= $1 OR seen_at < $2", (now, idle_before)),
            ("DELETE FROM portal_tokens WHERE expires_at <= $1", (now,)),
        ])


def _insert_token(token: PortalToken) -> tuple[str, tuple[Any, ...]]:
    return ("INSERT INTO portal_tokens (token_hash, purpose, user_id, created_at, expires_at, used_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            (token.token_hash, token.purpose, token.user_id, token.created_at, token.expires_at, token.used_at))
