"""The webhook tables on the PostgreSQL key store: a mixin of `PostgresKeyStore`, on its pool, so
events join the transactions of the changes that make them.

Several instances claim from one outbox: the claim is one statement that locks due rows with
`FOR UPDATE SKIP LOCKED` (instances claiming at once take different rows, without waiting on
each other) and stamps a lease on them; a holder that dies mid-attempt leaves its rows to the
first claim after the lease, never stuck.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gateway.keystore.outbox import ENDPOINT_CHANGES, Claim, Delivery, Endpoint, NewEvent
from gateway.keystore.postgres_times import utc


def _match(event: NewEvent, first: int) -> tuple[str, tuple[Any, ...]]:
    """The endpoints an event goes to, with its parameters numbered from `first`."""
    if event.endpoint_id is not None:
        return f"e.id = ${first}::text", (event.endpoint_id,)
    return (f"NOT e.disabled AND (e.tenant_id IS NULL OR e.tenant_id = ${first}::text) AND EXISTS (SELECT 1 FROM "
            f"webhook_subscriptions s WHERE s.endpoint_id = e.id AND s.event_type IN (${first + 1}::text, '*'))",
            (event.tenant_id, event.type))


def event_statements(events: Sequence[NewEvent]) -> list[tuple[str, tuple[Any, ...]]]:
    """Each event stored with a pending delivery per matching endpoint; not stored without one."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    for event in events:
        match, args = _match(event, 6)
        out.append((
            "INSERT INTO webhook_events (id, type, tenant_id, created_at, payload) SELECT $1::text, $2::text, "
            f"$3::text, $4::timestamptz, $5::text WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE {match})",
            (event.id, event.type, event.tenant_id, event.at, event.body.decode(), *args)))
        match, args = _match(event, 3)
        out.append((
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, retry_from, "
            f"created_at) SELECT $1::text, e.id, 'pending', 0, $2::timestamptz, $2, $2 FROM webhook_endpoints e WHERE {match}",
            (event.id, event.at, *args)))
    return out


_ENDPOINT = ("SELECT e.id, e.url, e.tenant_id, e.description, e.secret, e.disabled, e.disabled_reason, "
             "e.failing_since, e.created_at, e.updated_at, ARRAY(SELECT s.event_type FROM webhook_subscriptions s "
             "WHERE s.endpoint_id = e.id ORDER BY s.event_type), e.previous_secret, e.previous_secret_expires_at "
             "FROM webhook_endpoints e")
_DELIVERY = ("SELECT d.id, d.event_id, v.type, d.endpoint_id, v.tenant_id, d.status, d.attempts, d.response_status, "
             "d.error, d.last_attempt_at, d.next_attempt_at, d.created_at, d.delivered_at "
             "FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id")
# an attempt in flight still records its outcome: delivered stays delivered, anything else fails
_FAIL_PENDING = ("UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, error = $2 "
                 "WHERE endpoint_id {} AND status = 'pending'")


def endpoint_row(r: Any) -> Endpoint:
    return Endpoint(
        id=r[0], url=r[1], tenant_id=r[2], description=r[3], secret=r[4], disabled=r[5], disabled_reason=r[6],
        failing_since=utc(r[7]), created_at=utc(r[8]), updated_at=utc(r[9]), events=tuple(r[10]),  # type: ignore[arg-type]
        previous_secret=r[11], previous_secret_expires_at=utc(r[12]),
    )


def delivery_row(r: Any) -> Delivery:
    return Delivery(
        id=r[0], event_id=r[1], event_type=r[2], endpoint_id=r[3], tenant_id=r[4], status=r[5], attempts=r[6],
        response_status=r[7], error=r[8], last_attempt_at=utc(r[9]), next_attempt_at=utc(r[10]),
        created_at=utc(r[11]), delivered_at=utc(r[12]),  # type: ignore[arg-type]
    )


class PostgresWebhooks:
    on_events: Callable[[], None] | None = None

    if TYPE_CHECKING:  # provided by PostgresKeyStore
        async def _fetch(self, sql: str, *args: Any) -> list[Any]: ...
        async def _one(self, sql: str, *args: Any) -> Any: ...
        async def _write(self, statements: list[tuple[str, tuple[Any, ...]]], *, first_must_change: bool = False,
                         events: Sequence[NewEvent] = ()) -> bool: ...
        async def _write_fetch(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Any]: ...

    async def add_events(self, events: Sequence[NewEvent]) -> None:
        await self._write([], events=events)

    # endpoints

    async def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        e = endpoint
        await self._write([
            ("INSERT INTO webhook_endpoints (id, url, tenant_id, description, secret, disabled, disabled_reason, "
             "failing_since, created_at, updated_at, previous_secret, previous_secret_expires_at) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
             (e.id, e.url, e.tenant_id, e.description, e.secret, e.disabled, e.disabled_reason, e.failing_since,
              e.created_at, e.updated_at, e.previous_secret, e.previous_secret_expires_at)),
            ("INSERT INTO webhook_subscriptions SELECT $1, unnest($2::text[])", (e.id, list(e.events))),
        ])
        return endpoint

    async def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = await self._one(f"{_ENDPOINT} WHERE e.id = $1", endpoint_id)
        return endpoint_row(row) if row else None

    async def list_endpoints(self, *, tenant_id: str | None = None, page: int,
                             per_page: int) -> tuple[list[Endpoint], int]:
        where, args = ("WHERE e.tenant_id = $3", [tenant_id]) if tenant_id is not None else ("", [])
        rows = await self._fetch(f"{_ENDPOINT} {where} ORDER BY e.created_at, e.id LIMIT $1 OFFSET $2",
                                 per_page, (page - 1) * per_page, *args)
        count_where = where.replace("$3", "$1")
        total = (await self._one(f"SELECT COUNT(*) FROM webhook_endpoints e {count_where}", *args))[0]
        return [endpoint_row(r) for r in rows], int(total)

    async def update_endpoint(self, endpoint_id: str, *, changes: Mapping[str, Any],
                              events: Sequence[str] | None = None, at: dt.datetime) -> Endpoint | None:
        assert set(changes) <= ENDPOINT_CHANGES, changes
        sets = dict(changes)
        if "disabled" in sets:
            sets["disabled"] = bool(sets["disabled"])
            if not sets["disabled"]:
                sets.update(disabled_reason=None, failing_since=None)
        pairs = [*sets.items(), ("updated_at", at)]
        assignments = ", ".join(f"{k} = ${i}" for i, (k, _) in enumerate(pairs, start=2))
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (f"UPDATE webhook_endpoints SET {assignments} WHERE id = $1", (endpoint_id, *[v for _, v in pairs]))]
        if events is not None:
            statements.append(("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1", (endpoint_id,)))
            statements.append(("INSERT INTO webhook_subscriptions SELECT $1, unnest($2::text[])",
                               (endpoint_id, list(events))))
        if sets.get("disabled"):
            statements.append((_FAIL_PENDING.format("= $1"), (endpoint_id, "the endpoint was disabled")))
        if not await self._write(statements, first_must_change=True):
            return None
        return await self.get_endpoint(endpoint_id)

    async def rotate_endpoint_secret(self, endpoint_id: str, secret: str, *, previous_until: dt.datetime | None,
                                     at: dt.datetime) -> Endpoint | None:
        # one statement: the secret replaced is the one stored at that instant (a rotation racing
        # another keeps one of them as the previous secret, never a secret no receiver was shown)
        previous = "secret" if previous_until is not None else "NULL"
        if not await self._write([(
                f"UPDATE webhook_endpoints SET previous_secret = {previous}, previous_secret_expires_at = $3, "
                "secret = $2, updated_at = $4 WHERE id = $1", (endpoint_id, secret, previous_until, at))],
                first_must_change=True):
            return None
        return await self.get_endpoint(endpoint_id)

    async def forget_expired_secrets(self, now: dt.datetime) -> int:
        if not await self._one("SELECT 1 FROM webhook_endpoints WHERE previous_secret_expires_at <= $1 LIMIT 1", now):
            return 0  # the usual answer, found without a write
        row = await self._one(
            "WITH gone AS (UPDATE webhook_endpoints SET previous_secret = NULL, previous_secret_expires_at = NULL "
            "WHERE previous_secret_expires_at <= $1 RETURNING 1) SELECT COUNT(*) FROM gone", now)
        return int(row[0])

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        # deliveries and subscriptions go with it (ON DELETE CASCADE); events no delivery needs
        # any more are pruned later
        return await self._write([("DELETE FROM webhook_endpoints WHERE id = $1", (endpoint_id,))],
                                 first_must_change=True)

    # deliveries

    async def get_delivery(self, delivery_id: int) -> Delivery | None:
        row = await self._one(f"{_DELIVERY} WHERE d.id = $1", delivery_id)
        return delivery_row(row) if row else None

    async def list_deliveries(self, endpoint_id: str, *, after: int | None, limit: int,
                              newest_first: bool = False) -> list[Delivery]:
        if newest_first:
            bound, order = (after if after is not None else 2**62), "d.id < $3 ORDER BY d.id DESC"
        else:
            bound, order = (after or 0), "d.id > $3 ORDER BY d.id ASC"
        rows = await self._fetch(f"{_DELIVERY} WHERE d.endpoint_id = $1 AND {order} LIMIT $2", endpoint_id, limit, bound)
        return [delivery_row(r) for r in rows]

    async def retry_delivery(self, delivery_id: int, at: dt.datetime) -> Delivery | None:
        done = await self._write([(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2, retry_from = $2 "
            "WHERE id = $1 AND (lease_until IS NULL OR lease_until <= $2)", (delivery_id, at))],
            first_must_change=True)
        if done and self.on_events is not None:
            self.on_events()
        return await self.get_delivery(delivery_id)

    async def claim_deliveries(self, now: dt.datetime, *, lease_until: dt.datetime, limit: int,
                               skip_tenants: Collection[str] = ()) -> list[Claim]:
        token = secrets.token_hex(12)
        rows = await self._fetch(
            "UPDATE webhook_deliveries d SET lease_until = $2, lease_token = $3, attempts = d.attempts + 1, "
            "last_attempt_at = $1 FROM (SELECT c.id FROM webhook_deliveries c JOIN webhook_endpoints ce "
            "ON ce.id = c.endpoint_id WHERE c.status = 'pending' AND c.next_attempt_at <= $1 "
            "AND (c.lease_until IS NULL OR c.lease_until <= $1) AND NOT ce.disabled "
            "AND (ce.tenant_id IS NULL OR ce.tenant_id <> ALL($5::text[])) "
            "ORDER BY c.next_attempt_at, c.id LIMIT $4 FOR UPDATE OF c SKIP LOCKED) due, "
            "webhook_events v, webhook_endpoints e WHERE d.id = due.id AND v.id = d.event_id AND e.id = d.endpoint_id "
            "RETURNING d.id, d.attempts, d.retry_from, v.id, v.type, v.payload, e.id, e.url, e.secret, d.next_attempt_at, "
            "e.previous_secret, e.previous_secret_expires_at, e.tenant_id",
            now, lease_until, token, limit, sorted(skip_tenants))
        rows.sort(key=lambda r: (r[9], r[0]))
        return [Claim(delivery_id=r[0], token=token, attempt=r[1], retry_from=utc(r[2]),  # type: ignore[arg-type]
                      event_id=r[3], event_type=r[4], body=r[5].encode(), endpoint_id=r[6], url=r[7], secret=r[8],
                      previous_secret=r[10], previous_secret_expires_at=utc(r[11]), tenant_id=r[12])
                for r in rows]

    async def finish_delivery(self, claim: Claim, *, at: dt.datetime, status: str, response_status: int | None,
                              error: str | None, next_attempt_at: dt.datetime | None) -> bool:
        failing = "NULL" if status == "delivered" else "COALESCE(failing_since, $2)"
        disabled = "(SELECT disabled FROM webhook_endpoints WHERE id = $8)"
        return await self._write([
            (f"UPDATE webhook_deliveries SET status = CASE WHEN $3::text = 'pending' AND {disabled} THEN 'failed' "
             f"ELSE $3::text END, next_attempt_at = CASE WHEN $3::text = 'pending' AND NOT {disabled} THEN "
             "$6::timestamptz END, response_status = $4, error = $5, lease_until = NULL, lease_token = NULL, "
             "delivered_at = CASE WHEN $3::text = 'delivered' THEN $2 ELSE delivered_at END "
             "WHERE id = $1 AND lease_token = $7",
             (claim.delivery_id, at, status, response_status, error, next_attempt_at, claim.token, claim.endpoint_id)),
            (f"UPDATE webhook_endpoints SET failing_since = {failing} WHERE id = $1",
             (claim.endpoint_id,) if status == "delivered" else (claim.endpoint_id, at)),
        ], first_must_change=True)

    async def release_claims(self, claims: Sequence[Claim]) -> None:
        await self._write([
            ("UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL WHERE id = $1 AND lease_token = $2",
             (c.delivery_id, c.token)) for c in claims])

    async def next_due(self) -> dt.datetime | None:
        row = await self._one("SELECT MIN(GREATEST(d.next_attempt_at, d.lease_until)) FROM webhook_deliveries d "
                              "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
                              "WHERE d.status = 'pending' AND NOT e.disabled")
        return utc(row[0]) if row else None

    async def backlog(self) -> tuple[int, dt.datetime | None]:
        row = await self._one("SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'")
        return int(row[0]), utc(row[1])

    async def disable_failing_endpoints(self, failing_since: dt.datetime, at: dt.datetime) -> list[Endpoint]:
        if not await self._one("SELECT 1 FROM webhook_endpoints WHERE NOT disabled AND failing_since <= $1 LIMIT 1",
                               failing_since):
            return []  # the usual answer, found without a write
        failing = "IN (SELECT id FROM webhook_endpoints WHERE NOT disabled AND failing_since <= $1)"
        found = await self._write_fetch([
            (_FAIL_PENDING.format(failing), (failing_since, "the endpoint was disabled after failing for too long")),
            ("UPDATE webhook_endpoints SET disabled = TRUE, disabled_reason = 'failing', updated_at = $2 "
             "WHERE NOT disabled AND failing_since <= $1 RETURNING id", (failing_since, at)),
        ])
        disabled = [await self.get_endpoint(r[0]) for r in found]
        return [e for e in disabled if e is not None]

    async def prune_events(self, before: dt.datetime, limit: int) -> int:
        if not await self._one("SELECT 1 FROM webhook_events WHERE created_at < $1 LIMIT 1", before):
            return 0
        rows = await self._write_fetch([(
            "DELETE FROM webhook_events WHERE id IN (SELECT v.id FROM webhook_events v WHERE v.created_at < $1 "
            "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = v.id AND d.status = 'pending') "
            "LIMIT $2) RETURNING id", (before, limit))])
        return len(rows)
