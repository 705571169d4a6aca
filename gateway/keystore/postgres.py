"""The shared key store: PostgreSQL through an asyncpg pool, for several gateway instances.

Same protocol and conformance suite as the SQLite store. Migrations run on open under an
advisory lock, so instances starting together apply each version once. Timestamps are
`timestamptz`, permissions and resources `jsonb`; only the SHA-256 of each key is stored. This
module holds the key queries (the request path's lookup among them); the pool and its
transactions are `database_postgres.py`, the schema `schema_postgres.py`, and the other rows live
in the mixins: tenants and users (`accounts_postgres.py`), the portal's (`portal_postgres.py`)
and the webhooks' (`outbox_postgres.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.keystore import rows
from gateway.keystore.accounts_postgres import PostgresAccountQueries
from gateway.keystore.base import KEY_SORTS
from gateway.keystore.batch import BatchedLookup
from gateway.keystore.database_postgres import PostgresDatabase
from gateway.keystore.models import ApiKey, Principal
from gateway.keystore.outbox import NewEvent
from gateway.keystore.outbox_postgres import PostgresWebhooks
from gateway.keystore.portal_postgres import PostgresPortalQueries
from gateway.keystore.postgres_times import utc
from gateway.keystore.rows import KEY_COLUMNS, TENANT_COLUMNS, USER_COLUMNS, key_params, order_by, status_case

_TENANT, _USER, _KEY = TENANT_COLUMNS, USER_COLUMNS, KEY_COLUMNS
_STATUS = status_case("$1")


def key_row(r: Any) -> ApiKey:
    return rows.key_row(r, utc)


class PostgresKeyStore(PostgresDatabase, PostgresAccountQueries, PostgresPortalQueries, PostgresWebhooks):
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 5.0) -> None:
        super().__init__(url, min_size=min_size, max_size=max_size, timeout=timeout)
        self._by_hash = BatchedLookup(self._principals_by_hash)

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
        return rows.principal_row(row, utc) if row is not None else None

    async def _principals_by_hash(self, hashes: list[str]) -> dict[str, Principal | Exception]:
        found = await self._fetch(f"{_PRINCIPAL}k.secret_hash = ANY($1::text[])", hashes)
        return rows.principals_by_hash(found, utc)

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


# jsonb comes back as text with asyncpg's default codecs; keys are read by position.
_KEY_TEXT = _KEY.replace("k.permissions", "k.permissions::text").replace("k.resources", "k.resources::text")
_PRINCIPAL = (f"SELECT {_KEY_TEXT}, {_TENANT}, {_USER} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
              "LEFT JOIN users u ON u.id = k.user_id WHERE ")
