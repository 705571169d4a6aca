"""The webhook tables on the SQLite key store: a mixin of `SQLiteKeyStore`, on its connection
and under its write lock, so events join the transactions of the changes that make them.

Claims are write transactions (`BEGIN IMMEDIATE`): one process or worker at a time takes due
deliveries and stamps its lease on them.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gateway.keystore.outbox import ENDPOINT_CHANGES, Claim, Delivery, Endpoint, NewEvent
from gateway.keystore.sqlite_times import parse_ts, ts

_MATCH = ("e.disabled = 0 AND (e.tenant_id IS NULL OR e.tenant_id = :tenant) AND EXISTS (SELECT 1 FROM "
          "webhook_subscriptions s WHERE s.endpoint_id = e.id AND s.event_type IN (:type, '*'))")
_TARGET = "e.id = :endpoint"
_ENDPOINT = ("SELECT e.id, e.url, e.tenant_id, e.description, e.secret, e.disabled, e.disabled_reason, "
             "e.failing_since, e.created_at, e.updated_at, (SELECT group_concat(s.event_type, ',') "
             "FROM webhook_subscriptions s WHERE s.endpoint_id = e.id), e.previous_secret, "
             "e.previous_secret_expires_at FROM webhook_endpoints e")
_DELIVERY = ("SELECT d.id, d.event_id, v.type, d.endpoint_id, v.tenant_id, d.status, d.attempts, d.response_status, "
             "d.error, d.last_attempt_at, d.next_attempt_at, d.created_at, d.delivered_at "
             "FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id")
# an attempt in flight still records its outcome: delivered stays delivered, anything else fails
_FAIL_PENDING = ("UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, error = :why "
                 "WHERE endpoint_id {} AND status = 'pending'")


def event_statements(events: Sequence[NewEvent]) -> list[tuple[str, Any]]:
    """Each event stored with a pending delivery per matching endpoint; not stored without one."""
    out: list[tuple[str, Any]] = []
    for event in events:
        match = _TARGET if event.endpoint_id is not None else _MATCH
        params = {"id": event.id, "type": event.type, "tenant": event.tenant_id, "at": ts(event.at),
                  "payload": event.body.decode(), "endpoint": event.endpoint_id}
        out.append((
            "INSERT INTO webhook_events (id, type, tenant_id, created_at, payload) "
            f"SELECT :id, :type, :tenant, :at, :payload WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE {match})",
            params))
        out.append((
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, retry_from, "
            f"created_at) SELECT :id, e.id, 'pending', 0, :at, :at, :at FROM webhook_endpoints e WHERE {match}",
            params))
    return out


def endpoint_row(r: Any) -> Endpoint:
    return Endpoint(
        id=r[0], url=r[1], tenant_id=r[2], description=r[3], secret=r[4], disabled=bool(r[5]),
        disabled_reason=r[6], failing_since=parse_ts(r[7]), created_at=parse_ts(r[8]),  # type: ignore[arg-type]
        updated_at=parse_ts(r[9]), events=tuple(sorted((r[10] or "").split(",")) if r[10] else ()),  # type: ignore[arg-type]
        previous_secret=r[11], previous_secret_expires_at=parse_ts(r[12]),
    )


def delivery_row(r: Any) -> Delivery:
    return Delivery(
        id=r[0], event_id=r[1], event_type=r[2], endpoint_id=r[3], tenant_id=r[4], status=r[5], attempts=r[6],
        response_status=r[7], error=r[8], last_attempt_at=parse_ts(r[9]), next_attempt_at=parse_ts(r[10]),
        created_at=parse_ts(r[11]), delivered_at=parse_ts(r[12]),  # type: ignore[arg-type]
    )


class SQLiteWebhooks:
    on_events: Callable[[], None] | None = None

    if TYPE_CHECKING:  # provided by SQLiteKeyStore
        async def _all(self, sql: str, params: Any = ()) -> list[Any]: ...
        async def _one(self, sql: str, params: Any = ()) -> Any: ...
        async def _write(self, statements: list[tuple[str, Any]], *, first_must_change: bool = False,
                         events: Sequence[NewEvent] = ()) -> int | None: ...
        async def _write_fetch(self, statements: list[tuple[str, Any]]) -> list[Any]: ...

    async def add_events(self, events: Sequence[NewEvent]) -> None:
        await self._write([], events=events)

    # endpoints

    async def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        e = endpoint
        await self._write([
            ("INSERT INTO webhook_endpoints (id, url, tenant_id, description, secret, disabled, disabled_reason, "
             "failing_since, created_at, updated_at, previous_secret, previous_secret_expires_at) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (e.id, e.url, e.tenant_id, e.description, e.secret, int(e.disabled), e.disabled_reason,
              ts(e.failing_since), ts(e.created_at), ts(e.updated_at), e.previous_secret,
              ts(e.previous_secret_expires_at))),
            *[("INSERT INTO webhook_subscriptions VALUES (?, ?)", (e.id, t)) for t in e.events],
        ])
        return endpoint

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = await self._one(f"{_ENDPOINT} WHERE e.id = ?", (endpoint_id,))
        return endpoint_row(row) if row else None

    async def list_endpoints(self, *, tenant_id: str | None = None, page: int,
                             per_page: int) -> tuple[list[Endpoint], int]:
        where, params = ("WHERE e.tenant_id = ?", [tenant_id]) if tenant_id is not None else ("", [])
        rows = await self._all(f"{_ENDPOINT} {where} ORDER BY e.created_at, e.id LIMIT ? OFFSET ?",
                               (*params, per_page, (page - 1) * per_page))
        total = (await self._one(f"SELECT COUNT(*) FROM webhook_endpoints e {where}", params))[0]
        return [endpoint_row(r) for r in rows], int(total)

    async def update_endpoint(self, endpoint_id: str, *, changes: Mapping[str, Any],
                              events: Sequence[str] | None = None, at: dt.datetime) -> Endpoint | None:
        assert set(changes) <= ENDPOINT_CHANGES, changes
        sets = dict(changes)
        if "disabled" in sets:
            sets["disabled"] = int(bool(sets["disabled"]))
            if not sets["disabled"]:
                sets.update(disabled_reason=None, failing_since=None)
        assignments = ", ".join([f"{k} = :{k}" for k in sets] + ["updated_at = :at"])
        params = {**sets, "id": endpoint_id, "at": ts(at), "why": "the endpoint was disabled"}
        statements: list[tuple[str, Any]] = [(f"UPDATE webhook_endpoints SET {assignments} WHERE id = :id", params)]
        if events is not None:
            statements.append(("DELETE FROM webhook_subscriptions WHERE endpoint_id = ?", (endpoint_id,)))
            statements += [("INSERT INTO webhook_subscriptions VALUES (?, ?)", (endpoint_id, t)) for t in events]
        if sets.get("disabled"):
            statements.append((_FAIL_PENDING.format("= :id"), params))
        if await self._write(statements, first_must_change=True) is None:
            return None
        return await self.get_endpoint(endpoint_id)

    async def rotate_endpoint_secret(self, endpoint_id: str, secret: str, *, previous_until: dt.datetime | None,
                                     at: dt.datetime) -> Endpoint | None:
        # one statement: the secret replaced is the one stored at that instant (a rotation racing
        # another keeps one of them as the previous secret, never a secret no receiver was shown)
        previous = "secret" if previous_until is not None else "NULL"
        done = await self._write([(
            f"UPDATE webhook_endpoints SET previous_secret = {previous}, previous_secret_expires_at = :until, "
            "secret = :secret, updated_at = :at WHERE id = :id",
            {"id": endpoint_id, "secret": secret, "until": ts(previous_until), "at": ts(at)})], first_must_change=True)
        return await self.get_endpoint(endpoint_id) if done is not None else None

    async def forget_expired_secrets(self, now: dt.datetime) -> int:
        if not await self._one("SELECT 1 FROM webhook_endpoints WHERE previous_secret_expires_at <= ? LIMIT 1",
                               (ts(now),)):
            return 0  # the usual answer, found without taking the write lock
        done = await self._write([(
            "UPDATE webhook_endpoints SET previous_secret = NULL, previous_secret_expires_at = NULL "
            "WHERE previous_secret_expires_at <= ?", (ts(now),))])
        return done or 0

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        # deliveries and subscriptions go with it (ON DELETE CASCADE); events no delivery needs
        # any more are pruned later
        done = await self._write([("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))],
                                 first_must_change=True)
        return done is not None

    # deliveries

    async def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = await self._one(f"{_DELIVERY} WHERE d.id = ?", (delivery_id,))
        return delivery_row(row) if row else None

    async def list_deliveries(self, endpoint_id: str, *, after: int | None, limit: int,
                              newest_first: bool = False) -> list[Delivery]:
        if newest_first:
            cond, order = ("AND d.id < ?", [after]) if after is not None else ("", []), "DESC"
        else:
            cond, order = ("AND d.id > ?", [after or 0]), "ASC"
        rows = await self._all(f"{_DELIVERY} WHERE d.endpoint_id = ? {cond[0]} ORDER BY d.id {order} LIMIT ?",
                               (endpoint_id, *cond[1], limit))
        return [delivery_row(r) for r in rows]

    async def retry_delivery(self, delivery_id: int, at: dt.datetime) -> Delivery | None:
        done = await self._write([(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = :at, retry_from = :at "
            "WHERE id = :id AND (lease_until IS NULL OR lease_until <= :at)",
            {"id": delivery_id, "at": ts(at)})], first_must_change=True)
        if done is not None and self.on_events is not None:
            self.on_events()
        return await self.get_delivery(delivery_id)

    async def claim_deliveries(self, now: dt.datetime, *, lease_until: dt.datetime, limit: int,
                               skip_tenants: Collection[str] = ()) -> list[Claim]:
        token = secrets.token_hex(12)
        skipped = {f"skip{i}": tenant for i, tenant in enumerate(sorted(skip_tenants))}
        skip = f"AND (e.tenant_id IS NULL OR e.tenant_id NOT IN ({', '.join(':' + k for k in skipped)})) " if skipped else ""
        claimed = await self._write_fetch([(
            "UPDATE webhook_deliveries SET lease_until = :lease, lease_token = :token, attempts = attempts + 1, "
            "last_attempt_at = :now WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e "
            "ON e.id = d.endpoint_id WHERE d.status = 'pending' AND d.next_attempt_at <= :now "
            f"AND (d.lease_until IS NULL OR d.lease_until <= :now) AND e.disabled = 0 {skip}"
            "ORDER BY d.next_attempt_at, d.id LIMIT :limit) RETURNING id",
            {"lease": ts(lease_until), "token": token, "now": ts(now), "limit": limit, **skipped})])
        if not claimed:
            return []
        marks = ", ".join("?" * len(claimed))
        rows = await self._all(
            "SELECT d.id, d.lease_token, d.attempts, d.retry_from, v.id, v.type, v.payload, e.id, e.url, e.secret, "
            "e.previous_secret, e.previous_secret_expires_at, e.tenant_id "
            "FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id "
            f"JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id IN ({marks}) AND d.lease_token = ? "
            "ORDER BY d.next_attempt_at, d.id", (*[r[0] for r in claimed], token))
        return [Claim(delivery_id=r[0], token=r[1], attempt=r[2], retry_from=parse_ts(r[3]),  # type: ignore[arg-type]
                      event_id=r[4], event_type=r[5], body=r[6].encode(), endpoint_id=r[7], url=r[8], secret=r[9],
                      previous_secret=r[10], previous_secret_expires_at=parse_ts(r[11]), tenant_id=r[12])
                for r in rows]

    async def finish_delivery(self, claim: Claim, *, at: dt.datetime, status: str, response_status: int | None,
                              error: str | None, next_attempt_at: dt.datetime | None) -> bool:
        params = {"id": claim.delivery_id, "token": claim.token, "status": status, "code": response_status,
                  "error": error, "next": ts(next_attempt_at), "at": ts(at), "endpoint": claim.endpoint_id}
        failing = ("NULL" if status == "delivered" else "COALESCE(failing_since, :at)")
        done = await self._write([
            ("UPDATE webhook_deliveries SET status = CASE WHEN :status = 'pending' AND (SELECT disabled FROM "
             "webhook_endpoints WHERE id = :endpoint) THEN 'failed' ELSE :status END, "
             "next_attempt_at = CASE WHEN :status = 'pending' AND NOT (SELECT disabled FROM webhook_endpoints "
             "WHERE id = :endpoint) THEN :next END, "
             "response_status = :code, error = :error, lease_until = NULL, lease_token = NULL, "
             "delivered_at = CASE WHEN :status = 'delivered' THEN :at ELSE delivered_at END "
             "WHERE id = :id AND lease_token = :token", params),
            (f"UPDATE webhook_endpoints SET failing_since = {failing} WHERE id = :endpoint", params),
        ], first_must_change=True)
        return done is not None

    async def release_claims(self, claims: Sequence[Claim]) -> None:
        await self._write([
            ("UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL WHERE id = ? AND lease_token = ?",
             (c.delivery_id, c.token)) for c in claims])

    async def next_due(self) -> dt.datetime | None:
        row = await self._one(
            "SELECT MIN(CASE WHEN d.lease_until > d.next_attempt_at THEN d.lease_until ELSE d.next_attempt_at END) "
            "FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id "
            "WHERE d.status = 'pending' AND e.disabled = 0")
        return parse_ts(row[0]) if row else None

    async def backlog(self) -> tuple[int, dt.datetime | None]:
        row = await self._one("SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'")
        return int(row[0]), parse_ts(row[1])

    async def disable_failing_endpoints(self, failing_since: dt.datetime, at: dt.datetime) -> list[Endpoint]:
        if not await self._one("SELECT 1 FROM webhook_endpoints WHERE disabled = 0 AND failing_since <= ? LIMIT 1",
                               (ts(failing_since),)):
            return []  # the usual answer, found without taking the write lock
        failing = "IN (SELECT id FROM webhook_endpoints WHERE disabled = 0 AND failing_since <= :since)"
        params = {"at": ts(at), "since": ts(failing_since), "why": "the endpoint was disabled after failing for too long"}
        found = await self._write_fetch([
            (_FAIL_PENDING.format(failing), params),
            ("UPDATE webhook_endpoints SET disabled = 1, disabled_reason = 'failing', updated_at = :at "
             "WHERE disabled = 0 AND failing_since <= :since RETURNING id", params),
        ])
        disabled = [await self.get_endpoint(endpoint_id) for (endpoint_id,) in found]
        return [e for e in disabled if e is not None]

    async def prune_events(self, before: dt.datetime, limit: int) -> int:
        if not await self._one("SELECT 1 FROM webhook_events WHERE created_at < ? LIMIT 1", (ts(before),)):
            return 0  # nothing that old: no write lock taken
        done = await self._write([(
            "DELETE FROM webhook_events WHERE id IN (SELECT v.id FROM webhook_events v WHERE v.created_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = v.id AND d.status = 'pending') "
            "LIMIT ?)", (ts(before), limit))])
        return done or 0

