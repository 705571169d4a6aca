"""The audit trail and call log stores, the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from gateway.config import CallLogConfig
from gateway.observability.recorder import Recorder
from gateway.observability.records import AuditEntry, CallEntry, CallRow, RecordStore, call_row
from gateway.observability.records_postgres import PostgresRecordStore
from gateway.observability.records_sqlite import SQLiteRecordStore
from gateway.observability.request_record import RequestRecord
from tests.services import drop_schema, postgres_url, require_postgres
from tests.unit.test_authorize import identity as make_identity

T0 = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)


def call(i: int, *, key: str | None = "key_a", status: int = 200, at: dt.datetime = T0, client_ip: str | None = None,
         error: str | None = None, tenant: str | None = "acme") -> CallRow:
    return call_row(CallEntry(at=at, request_id=f"req-{i}", tenant_id=tenant, key_id=key, key_name="k", method="GET",
                              route="api", path="/api", status=status, latency_ms=1.5, upstream_latency_ms=None,
                              rate_limited=status == 429, client_ip=client_ip, error=error))


async def test_audit_entries_round_trip_in_order(records: RecordStore) -> None:
    entries = [AuditEntry(at=T0 + dt.timedelta(seconds=i), actor="admin", action="key.created", target_type="key",
                          target_id=f"key_{i}", tenant_id="acme", key_name=None, source_ip="10.0.0.1")
               for i in range(5)]
    await records.append_audit(entries[:3])
    await records.append_audit(entries[3:])
    first = await records.list_audit(after=0, limit=2)
    rest = await records.list_audit(after=first[-1].id or 0, limit=10)
    got = first + rest
    assert [e.target_id for e in got] == [f"key_{i}" for i in range(5)]
    assert got[0].at == T0 and got[0].source_ip == "10.0.0.1" and got[0].key_name is None
    assert got[0].details is None


async def test_audit_details_round_trip(records: RecordStore) -> None:
    details = {"user_agent": "curl/8.5 \u00e9\"'", "path": "/api/v1/visitors", "method": "GET"}
    await records.append_audit([AuditEntry(at=T0, actor="system", action="key.canary_used", target_type="key",
                                           target_id="key_c", source_ip="203.0.113.9", details=details)])
    (got,) = await records.list_audit(after=None, limit=10)
    assert got.details == details and got.source_ip == "203.0.113.9"


async def test_calls_filter_page_both_ways_and_prune(records: RecordStore) -> None:
    await records.append_calls([call(i, key="key_a" if i % 2 else "key_b", status=429 if i == 3 else 200,
                                     at=T0 + dt.timedelta(days=i)) for i in range(6)])
    oldest = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    assert [c.request_id for c in oldest] == [f"req-{i}" for i in range(6)]
    newest = await records.list_calls(cursor=None, newest_first=True, limit=2, key_id=None, status=None)
    assert [c.request_id for c in newest] == ["req-5", "req-4"]
    older = await records.list_calls(cursor=newest[-1].id, newest_first=True, limit=2, key_id=None, status=None)
    assert [c.request_id for c in older] == ["req-3", "req-2"]
    by_key = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id="key_a", status=None)
    assert [c.request_id for c in by_key] == ["req-1", "req-3", "req-5"]
    limited = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=429)
    assert [(c.request_id, c.rate_limited) for c in limited] == [("req-3", True)]
    removed = await records.prune_calls(older_than=T0 + dt.timedelta(days=2), max_rows=3)
    assert removed == 3
    left = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    assert [c.request_id for c in left] == ["req-3", "req-4", "req-5"]


async def test_calls_keep_the_client_address_and_the_error_code(records: RecordStore) -> None:
    await records.append_calls([call(0, status=401, client_ip="203.0.113.7", error="REVOKED_CREDENTIALS"),
                                call(1, client_ip="2001:db8::1"), call(2)])
    rows = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    assert [(r.client_ip, r.error) for r in rows] == [("203.0.113.7", "REVOKED_CREDENTIALS"), ("2001:db8::1", None),
                                                      (None, None)]
    assert [call_row(r) for r in rows] == [call(0, status=401, client_ip="203.0.113.7", error="REVOKED_CREDENTIALS"),
                                           call(1, client_ip="2001:db8::1"), call(2)]  # what a migration copies


OLD_CALL_LOG = """(id {id}, at {time} NOT NULL, request_id TEXT NOT NULL, tenant_id TEXT, key_id TEXT,
    key_name TEXT, method TEXT NOT NULL, route TEXT, path TEXT NOT NULL, status INTEGER NOT NULL,
    latency_ms {real} NOT NULL, upstream_latency_ms {real}, rate_limited {flag} NOT NULL)"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_call_log_made_before_the_address_and_error_columns_gets_them(tmp_path: Path, kind: str) -> None:
    """The table as earlier versions made it, with a row: opening the store adds the columns."""
    store: RecordStore
    if kind == "sqlite":
        import sqlite3

        path = tmp_path / "records.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE call_log " + OLD_CALL_LOG.format(
                id="INTEGER PRIMARY KEY AUTOINCREMENT", time="TEXT", real="REAL", flag="INTEGER"))
            db.execute("INSERT INTO call_log (at, request_id, method, path, status, latency_ms, rate_limited) "
                       "VALUES ('2026-03-01T08:30:15.123456Z', 'req-old', 'GET', '/api', 200, 1.0, 0)")
        store = SQLiteRecordStore(str(path))
    else:
        import asyncpg

        from gateway.keystore.database_postgres import connect_args

        require_postgres()
        dsn, schema = connect_args(postgres_url(tmp_path))
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(f'CREATE TABLE "{schema}".call_log ' + OLD_CALL_LOG.format(
                id="BIGSERIAL PRIMARY KEY", time="TIMESTAMPTZ", real="DOUBLE PRECISION", flag="BOOLEAN"))
            await conn.execute(f'INSERT INTO "{schema}".call_log (at, request_id, method, path, status, latency_ms, '
                               "rate_limited) VALUES ($1, 'req-old', 'GET', '/api', 200, 1.0, false)", T0)
        finally:
            await conn.close()
        store = PostgresRecordStore(postgres_url(tmp_path))
    await store.open()
    try:
        await store.append_calls([call(1, client_ip="198.51.100.2", error="ROUTE_NOT_FOUND", status=404)])
        rows = await store.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    finally:
        await store.close()
        if kind == "postgres":
            await drop_schema(postgres_url(tmp_path))
    assert [(r.request_id, r.client_ip, r.error) for r in rows] == [("req-old", None, None),
                                                                    ("req-1", "198.51.100.2", "ROUTE_NOT_FOUND")]


async def test_call_times_round_trip_to_the_microsecond(records: RecordStore) -> None:
    # rows in and out of time order, within one second and across seconds, days and years
    times = [T0, T0 + dt.timedelta(microseconds=1), T0 + dt.timedelta(seconds=1, microseconds=999_999),
             T0 - dt.timedelta(microseconds=123_456), T0 + dt.timedelta(days=400), T0]
    await records.append_calls([call(i, at=at) for i, at in enumerate(times)])
    rows = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    assert [row.at for row in rows] == times
    assert all(row.at.tzinfo is not None and row.at.utcoffset() == dt.timedelta(0) for row in rows)
    assert rows[0].latency_ms == 1.5 and rows[0].upstream_latency_ms is None and rows[0].rate_limited is False


async def test_call_times_are_rounded_to_the_nearest_microsecond(records: RecordStore) -> None:
    # epoch floats as the recorder reads them: the first is ...22.48977255821 s exactly, the
    # second rounds up into the next second
    times = [1795993622.4897726, 1.9999995, 1795993622.0000004]
    await records.append_calls([(t, f"req-{i}", "acme", "key_a", "k", "GET", "api", "/api", 200, 1.5, None, False,
                                 None, None) for i, t in enumerate(times)])
    rows = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    assert [row.at for row in rows] == [dt.datetime.fromtimestamp(t, dt.UTC) for t in times]
    assert [row.at.isoformat() for row in rows][:2] == ["2026-11-29T23:07:02.489773+00:00",
                                                         "1970-01-01T00:00:01.999999+00:00"]


async def test_prune_by_age_takes_every_older_row_and_nothing_newer(records: RecordStore) -> None:
    assert await records.prune_calls(older_than=T0, max_rows=100) == 0  # empty
    # a row stamped ahead (a clock stepped back later, or another worker's batch) comes first
    await records.append_calls([call(0, at=T0 + dt.timedelta(days=365))])
    await records.append_calls([call(i, at=T0 + dt.timedelta(seconds=i)) for i in range(1, 6)])
    assert await records.prune_calls(older_than=T0, max_rows=100) == 0  # none older
    assert await records.prune_calls(older_than=T0 + dt.timedelta(seconds=2, microseconds=1), max_rows=100) == 2
    assert await records.prune_calls(older_than=T0 + dt.timedelta(days=1), max_rows=100) == 3
    left = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None)
    assert [row.request_id for row in left] == ["req-0"]


async def test_concurrent_appends_keep_ids_in_commit_order(records: RecordStore) -> None:
    await asyncio.gather(*(records.append_calls([call(b * 10 + i) for i in range(10)]) for b in range(8)))
    rows = await records.list_calls(cursor=None, newest_first=False, limit=100, key_id=None, status=None)
    assert len(rows) == 80
    ids = [r.id for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 80


async def test_audit_filters_by_tenant_and_action_both_ways(records: RecordStore) -> None:
    actions = ["key.created", "key.revoked", "tenant.created", "key.created", "key.revoked", "key.created"]
    await records.append_audit([AuditEntry(at=T0, actor="admin", action=action, target_type="key",
                                           target_id=f"t{i}", tenant_id=("acme", "globex", None)[i % 3])
                                for i, action in enumerate(actions)])
    acme = await records.list_audit(after=None, limit=10, tenant_id="acme")
    assert [e.target_id for e in acme] == ["t0", "t3"]
    created = await records.list_audit(after=None, limit=10, action="key.created")
    assert [e.target_id for e in created] == ["t0", "t3", "t5"]
    both = await records.list_audit(after=None, limit=10, tenant_id="acme", action="key.created")
    assert [e.target_id for e in both] == ["t0", "t3"]
    newest = await records.list_audit(after=None, limit=1, newest_first=True, action="key.revoked")
    assert [e.target_id for e in newest] == ["t4"]
    older = await records.list_audit(after=newest[0].id, limit=5, newest_first=True, action="key.revoked")
    assert [e.target_id for e in older] == ["t1"]
    assert await records.list_audit(after=None, limit=10, tenant_id="acme", action="tenant.created") == []


async def test_calls_filter_by_tenant(records: RecordStore) -> None:
    await records.append_calls([call(i, tenant=("acme", "globex", None)[i % 3], status=404 if i == 3 else 200)
                                for i in range(7)])
    acme = await records.list_calls(cursor=None, newest_first=False, limit=10, key_id=None, status=None,
                                    tenant_id="acme")
    assert [c.request_id for c in acme] == ["req-0", "req-3", "req-6"]
    newest = await records.list_calls(cursor=None, newest_first=True, limit=10, key_id=None, status=200,
                                      tenant_id="acme")
    assert [c.request_id for c in newest] == ["req-6", "req-0"]


async def test_audit_newest_first_pages_backwards(records: RecordStore) -> None:
    await records.append_audit([AuditEntry(at=T0, actor="a", action="key.created", target_type="key",
                                           target_id=f"key_{i}") for i in range(5)])
    newest = await records.list_audit(after=None, limit=2, newest_first=True)
    assert [e.target_id for e in newest] == ["key_4", "key_3"]
    older = await records.list_audit(after=newest[-1].id, limit=5, newest_first=True)
    assert [e.target_id for e in older] == ["key_2", "key_1", "key_0"]


async def test_a_write_cancelled_half_way_leaves_nothing_for_the_next_to_commit(tmp_path: Path) -> None:
    # a flush asked for by an admin request that went away: its statements must not be committed
    # later with the next write, which writes the same rows again
    store = SQLiteRecordStore(str(tmp_path / "records.db"))
    await store.open()
    try:
        db = store._conn()
        execute = db.execute
        ran: list[str] = []

        async def execute_then_cancel(sql: str, params: Any = None) -> Any:
            cursor = await execute(sql, params)
            ran.append(sql)
            if len(ran) == 1:
                asyncio.current_task().cancel()  # type: ignore[union-attr]  # at the next await
            return cursor

        rows = [call(i, at=T0 + dt.timedelta(seconds=i)) for i in range(1000)]
        db.execute = execute_then_cancel  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await store.append_calls(rows)
        db.execute = execute  # type: ignore[method-assign]
        assert len(ran) == 1  # one statement (400 rows) ran before the cancellation
        await store.append_calls(rows)  # the buffer writes the batch again
        got = await store.list_calls(cursor=None, newest_first=False, limit=5000, key_id=None, status=None)
        assert [row.request_id for row in got] == [f"req-{i}" for i in range(1000)]
    finally:
        await store.close()


async def test_a_large_batch_is_converted_between_requests_and_written_whole() -> None:
    # a fifth of a second's calls at a high rate: converted a few hundred rows per turn of the
    # event loop, so requests are served in between, then written in one call, in order
    written: list[list[CallRow]] = []
    turns: list[int] = []

    class Store:
        async def append_audit(self, entries: list[AuditEntry]) -> None: ...

        async def append_calls(self, rows: list[CallRow], usage: Any = None) -> None:
            written.append(list(rows))

    identity = make_identity(id="key_a", name="k", tenant={"id": "acme"})  # real: a compiled record checks its type
    calls = [RequestRecord(1_800_000_000.0 + i, 2.0 + i, 1.0 + i, None if i % 2 else 1.5 + i, f"req-{i}", "api",
                           "GET", "/api", 200, None, identity if i % 3 else None, None, "", False)  # type: ignore[arg-type]
             for i in range(1000)]
    recorder = Recorder(Store(), CallLogConfig())  # type: ignore[arg-type]

    async def request_path() -> None:  # what the event loop would run meanwhile
        while not written:
            turns.append(len(written))
            await asyncio.sleep(0)

    other = asyncio.create_task(request_path())
    await asyncio.sleep(0)  # it has started
    await recorder._append_calls(calls)
    await other
    assert len(turns) >= 3  # 1,000 rows: three turns given away, not one conversion
    [rows] = written
    assert [row[1] for row in rows] == [f"req-{i}" for i in range(1000)]
    assert rows[1] == (1_800_000_001.0, "req-1", "acme", "key_a", "k", "GET", "api", "/api", 200, 1000.0, None,
                       False, None, None)
    assert rows[3][2:5] == (None, None, None) and rows[2][10] == 500.0


async def test_a_tenants_call_log_is_read_through_an_index_of_its_own(records: RecordStore) -> None:
    """Any member of a tenant pages through its call log in the portal, with filters that may
    match nothing (`status=599`): read by scanning `id`, each page went through every tenant's
    rows (0.5 s a request beside a million rows of another tenant, measured through a gateway).
    An index led by tenant_id keeps a tenant's read to its own rows."""
    query = "SELECT id FROM call_log WHERE tenant_id = {t} AND status = {s} ORDER BY id DESC LIMIT 100"
    if isinstance(records, SQLiteRecordStore):
        plan = await records._read("EXPLAIN QUERY PLAN " + query.format(t="?", s="?"), ("acme", 599))
        assert any("call_log_tenant" in str(step[-1]) for step in plan), plan
    else:
        assert isinstance(records, PostgresRecordStore)
        rows = await records._fetch("SELECT indexdef FROM pg_indexes WHERE indexname = 'call_log_tenant'"
                                     " AND schemaname = current_schema()")  # other runs' schemas have one too
        assert [r[0].split(" USING ")[1] for r in rows] == ["btree (tenant_id, id)"], rows
    await records.append_calls([call(i, tenant="acme" if i % 2 else "globex", status=599 if i == 7 else 200)
                                for i in range(10)])
    found = await records.list_calls(cursor=None, newest_first=True, limit=100, key_id=None, status=599,
                                     tenant_id="acme")
    assert [c.request_id for c in found] == ["req-7"]
