"""The usage tables' SQL, written once for SQLite and PostgreSQL (they differ in placeholders,
integer types and what SUM returns).

One table per granularity, keyed by (tenant_id, key_id, t). A tenant's totals are rows of their
own (`key_id` empty, `usage.TENANT_TOTAL`), added to with its keys' rows, so a tenant's series,
like a key's, is one range of the primary key (in SQLite, of the table itself) and reads one row
per bucket, however many keys the tenant has; a key's series without its tenant reads the
(key_id, t) index. An upsert adds to the counters already there, which is what lets batches,
workers and instances add up.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.observability.usage import COUNTERS, GRANULARITIES, Granularity

TABLE: dict[Granularity, str] = {g: f"usage_{g}" for g in GRANULARITIES}
COLUMNS = ("key_id", "t", "tenant_id", *COUNTERS)


@dataclass(frozen=True, slots=True)
class Dialect:
    integer: str           # the counters' and times' column type
    real: str
    sum: str               # SUM of a counter, as an integer
    placeholders: str      # "?" or "$" (numbered)

    def marks(self, count: int, first: int = 1) -> list[str]:
        if self.placeholders == "?":
            return ["?"] * count
        return [f"${i}" for i in range(first, first + count)]

    def schema(self) -> list[str]:
        counters = ", ".join(f"{c} {self.integer} NOT NULL DEFAULT 0" for c in COUNTERS)
        tail = " WITHOUT ROWID" if self.placeholders == "?" else ""
        statements: list[str] = []
        for table in TABLE.values():
            statements += [
                f"CREATE TABLE IF NOT EXISTS {table} (key_id TEXT NOT NULL, t {self.integer} NOT NULL, "
                f"tenant_id TEXT NOT NULL, {counters}, PRIMARY KEY (tenant_id, key_id, t)){tail}",
                f"CREATE INDEX IF NOT EXISTS {table}_key ON {table} (key_id, t)",
                f"CREATE INDEX IF NOT EXISTS {table}_t ON {table} (t)",
            ]
        statements.append(
            "CREATE TABLE IF NOT EXISTS usage_anomalies (key_id TEXT NOT NULL, kind TEXT NOT NULL, "
            f"window_t {self.integer} NOT NULL, tenant_id TEXT NOT NULL, at {self.real} NOT NULL, "
            f"requests {self.integer} NOT NULL, errors {self.integer} NOT NULL, "
            f"baseline_requests {self.real} NOT NULL, baseline_errors {self.real} NOT NULL, "
            "PRIMARY KEY (key_id, kind, window_t))")
        statements.append("CREATE INDEX IF NOT EXISTS usage_anomalies_at ON usage_anomalies (at)")
        return statements

    def upsert(self, granularity: Granularity, rows: int) -> str:
        """Add `rows` rows' counters to a table (rows of COLUMNS' width, in that order)."""
        table = TABLE[granularity]
        width = len(COLUMNS)
        values = ", ".join("(" + ", ".join(self.marks(width, 1 + r * width)) + ")" for r in range(rows))
        adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS)
        return (f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES {values} "
                f"ON CONFLICT (tenant_id, key_id, t) DO UPDATE SET {adds}")

    def page(self, granularity: Granularity, *, first: bool) -> str:
        """Rows in primary-key order, after a row's key unless `first`; parameters: [tenant,
        key, t,] limit."""
        table = TABLE[granularity]
        marks = self.marks(1 if first else 4)
        after = "" if first else f" WHERE (tenant_id, key_id, t) > ({marks[0]}, {marks[1]}, {marks[2]})"
        return (f"SELECT t, tenant_id, key_id, {', '.join(COUNTERS)} FROM {table}{after} "
                f"ORDER BY tenant_id, key_id, t LIMIT {marks[-1]}")

    def sums(self) -> str:
        return ", ".join(self.sum.format(c) for c in COUNTERS)

    def series(self, granularity: Granularity, *, with_tenant: bool) -> str:
        """Counters per bucket of [start, end) of one key or tenant (its totals' rows: key_id
        empty); parameters: the key, [the tenant,] start, end."""
        table = TABLE[granularity]
        marks = self.marks(4 if with_tenant else 3)
        tenant = f" AND tenant_id = {marks[1]}" if with_tenant else ""
        return (f"SELECT t, {', '.join(COUNTERS)} FROM {table} WHERE key_id = {marks[0]}{tenant} "
                f"AND t >= {marks[-2]} AND t < {marks[-1]} ORDER BY t")

    def totals(self, granularity: Granularity, *, key_list: str | None) -> str:
        """Counters summed per key (not the tenants' totals) over [start, end), keys with at
        least `min` requests.
        Parameters: start, end, min (numbered $1-$3), or with "?": start, end, the key list's
        own (`key_list` is its condition), then min."""
        table = TABLE[granularity]
        start, end, least = self.marks(3)
        keys = f" AND {key_list}" if key_list else ""
        return (f"SELECT key_id, MIN(tenant_id), {self.sums()} FROM {table} WHERE t >= {start} AND t < {end} "
                f"AND key_id <> ''{keys} "
                f"GROUP BY key_id HAVING SUM(requests) >= {least}")


SQLITE = Dialect(integer="INTEGER", real="REAL", sum="SUM({})", placeholders="?")
POSTGRES = Dialect(integer="BIGINT", real="DOUBLE PRECISION", sum="SUM({})::bigint", placeholders="$")

ANOMALY_COLUMNS = ("key_id", "kind", "window_t", "tenant_id", "at", "requests", "errors", "baseline_requests",
                   "baseline_errors")
