"""The embedded key store: SQLite through aiosqlite, WAL mode, versioned migrations on open.

Only the SHA-256 of each key is stored, with its display prefix and last four characters for
people to recognise it. Timestamps are fixed-width UTC text, so they sort as they compare. This
module holds the key queries (the request path's lookup among them); the connection and its
transactions are `database_sqlite.py`, the schema `schema_sqlite.py`, and the other rows live in
the mixins: tenants and users (`accounts_sqlite.py`), the portal's (`portal_sqlite.py`) and the
webhooks' (`outbox_sqlite.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.keystore import rows
from gateway.keystore.accounts_sqlite import SQLiteAccountQueries
from gateway.keystore.base import KEY_SORTS
from gateway.keystore.batch import BatchedLookup
from gateway.keystore.database_sqlite import SQLiteDatabase
from gateway.keystore.models import ApiKey, Principal
from gateway.keystore.outbox import NewEvent
from gateway.keystore.outbox_sqlite import SQLiteWebhooks
from gateway.keystore.portal_sqlite import SQLitePortalQueries
from gateway.keystore.rows import KEY_COLUMNS, TENANT_COLUMNS, USER_COLUMNS, key_params, order_by, status_case
from gateway.keystore.sqlite_times import parse_ts, ts

_TENANT, _USER, _KEY = TENANT_COLUMNS, USER_COLUMNS, KEY_COLUMNS
_STATUS = status_case(":now")


def key_row(r: Any) -> ApiKey:
    return rows.key_row(r, parse_ts)


class SQLiteKeyStore(SQLiteDatabase, SQLiteAccountQueries, SQLitePortalQueries, SQLiteWebhooks):
    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self._by_hash = BatchedLookup(self._principals_by_hash)

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
