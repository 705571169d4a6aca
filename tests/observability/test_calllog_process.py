"""The call log's writer process (`call_log.writer: process`), on real SQLite files: the rows and
usage the in-process writer makes, each batch once however writers die or flushes are cancelled,
and a gateway that goes on serving and recording when its writer is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from gateway.config import CallLogConfig
from gateway.observability.calllog_child import connect, write_batch
from gateway.observability.calllog_process import WriterProcess, flat
from gateway.observability.record_store import call_writer_kind
from gateway.observability.recorder import Recorder
from gateway.observability.records_sqlite import SQLiteRecordStore
from gateway.observability.request_record import RequestRecord
from gateway.observability.usage import GRANULARITIES
from tests.access.test_keys_e2e import call, routes, tenant_and_key
from tests.conftest import STORE_BACKEND
from tests.observability.test_usage_store import traffic
from tests.processes import ended


def varied(count: int, seed: int) -> list[RequestRecord]:
    """Requests with every field a row takes: upstream latencies or none, refusals with a code,
    no client address."""
    made = traffic(count, seed=seed)
    for i, record in enumerate(made):
        if i % 3 == 0:
            record.upstream_started = record.started + (record.done - record.started) / 3
        if i % 7 == 0:
            record.code, record.route = "ROUTE_NOT_FOUND", None
        if i % 11 == 0:
            record.client_ip = ""
    return made


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM call_log").fetchone()[0])


def requests_counted(path: Path) -> int:
    """Requests in the usage rollup (the tenants' totals of the minute table)."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT coalesce(sum(requests), 0) FROM usage_minute WHERE key_id = ''").fetchone()[0])


async def opened(path: Path) -> SQLiteRecordStore:
    store = SQLiteRecordStore(str(path))
    await store.open()
    return store


def test_auto_is_a_process_from_four_cpus() -> None:
    assert [call_writer_kind("auto", cpus) for cpus in (1, 2, 3, 4, 16)] == ["thread"] * 3 + ["process"] * 2
    assert call_writer_kind("thread", 16) == "thread" and call_writer_kind("process", 1) == "process"


@pytest.mark.parametrize("enabled", [True, False])  # off: the usage rollups alone
async def test_the_writer_process_writes_what_the_thread_writes(tmp_path: Path, enabled: bool) -> None:
    made = varied(1200, seed=5)
    written = {}
    for kind in ("thread", "process"):
        path = tmp_path / f"{kind}.db"
        store = await opened(path)
        writer = WriterProcess(str(path), busy_timeout=5) if kind == "process" else None
        recorder = Recorder(store, CallLogConfig(enabled=enabled), writer=writer)
        recorder.start()
        for record in made:
            recorder.call(record)
        await recorder.stop()  # the last batches are written, the writer process ends
        calls = await store.list_calls(cursor=None, newest_first=False, limit=5000, key_id=None, status=None)
        usage = [await store.usage_rows(g, after=None, limit=5000) for g in GRANULARITIES]
        written[kind] = (calls, usage)
        await store.close()
    calls, usage = written["process"]
    assert len(calls) == (1200 if enabled else 0) and sum(len(rows) for rows in usage) > 0
    assert not enabled or any(c.upstream_latency_ms for c in calls)
    assert written["process"] == written["thread"]


async def test_a_batch_sent_again_after_a_commit_nobody_heard_of_is_written_once(tmp_path: Path) -> None:
    # the writer committed batch 1 and died before saying so: the gateway sends those records
    # again at the head of its next batch, and the writers' mark says they are in
    path = tmp_path / "records.db"
    await (await opened(path)).close()  # the schema
    made = flat([r for r in varied(400, seed=8) if r.identity is not None])  # rows that all count as usage
    assert len(made) > 250
    conn = connect(str(path), 5000)
    assert write_batch(conn, "w1", 1, (), True, True, made[:100]) == 100
    assert write_batch(conn, "w1", 2, ((1, 100),), True, True, made[:200]) == 100
    assert (rows(path), requests_counted(path)) == (200, 200)
    # an attempt that was never committed (3, lost with its writer before its BEGIN) is written in full
    assert write_batch(conn, "w1", 4, ((3, 50),), True, True, made[200:]) == len(made) - 200
    # another writer's marks are its own
    assert write_batch(conn, "w2", 1, (), True, True, made[:10]) == 10
    assert (rows(path), requests_counted(path)) == (len(made) + 10, len(made) + 10)
    conn.close()


async def test_a_cancelled_flush_is_neither_lost_nor_written_twice(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = await opened(path)
    writer = WriterProcess(str(path), busy_timeout=5)
    recorder = Recorder(store, CallLogConfig(flush_interval=3600), writer=writer)
    recorder.start()
    made = varied(5000, seed=2)
    for record in made:
        recorder.call(record)
    flushing = asyncio.ensure_future(recorder.call_buffer.flush())
    while writer._inflight is None:  # the batch is on its way to the writer
        await asyncio.sleep(0)
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert len(recorder.call_buffer) == 5000  # not known to be written: kept
    assert await recorder.call_buffer.flush()
    await recorder.stop()
    await store.close()
    keyed = sum(1 for r in made if r.identity is not None)
    assert (rows(path), requests_counted(path)) == (5000, keyed)


async def test_a_writer_that_stops_answering_is_killed_and_its_batch_written_here(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = await opened(path)
    # long enough for a live writer's answer on a loaded machine (under a second was cut short),
    # short enough for the stopped one to be given up on soon
    writer = WriterProcess(str(path), busy_timeout=0.1, answer_timeout=3)
    recorder = Recorder(store, CallLogConfig(flush_interval=3600), writer=writer)
    recorder.start()
    made = varied(200, seed=6)
    for record in made[:100]:
        recorder.call(record)
    assert await recorder.call_buffer.flush()
    stuck = writer.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)  # alive, holding its pipe, answering nothing
    for record in made[100:]:
        recorder.call(record)
    assert await recorder.call_buffer.flush()  # no hang: the writer is given up on
    assert writer.deaths == 1 and writer.pid != stuck
    assert rows(path) == 200
    await recorder.stop()
    await store.close()
    await ended(stuck, timeout=10)  # killed, not left stopped


async def test_a_writer_that_cannot_start_leaves_the_batches_to_this_process(tmp_path: Path, caplog) -> None:
    path = tmp_path / "records.db"
    store = await opened(path)
    # the interpreter gone (an upgrade removed it under a running gateway)
    writer = WriterProcess(str(path), busy_timeout=5, executable=str(tmp_path / "python-removed"))
    recorder = Recorder(store, CallLogConfig(flush_interval=3600), writer=writer)
    with caplog.at_level("WARNING", logger="gateway.records"):
        recorder.start()
        for record in varied(50, seed=4):
            recorder.call(record)
        assert await recorder.call_buffer.flush()
    assert "call log writer process unavailable" in caplog.text
    assert writer.pid is None and writer.started == 0
    await recorder.stop()
    await store.close()
    assert rows(path) == 50


needs_sqlite = pytest.mark.skipif(STORE_BACKEND != "sqlite", reason="the writer process writes SQLite")


@needs_sqlite
async def test_a_killed_writer_loses_nothing_and_the_gateway_keeps_serving(start_gateway, upstream, https) -> None:
    gw = await start_gateway(routes=routes(upstream[0]), call_log={"writer": "process", "flush_interval": 3600})
    path = Path(gw.cfg.store.sqlite_path)
    writer = gw.recorder.writer
    assert writer is not None
    _, key = await tenant_and_key(gw)
    before = rows(path)
    served = 0

    async def serve(count: int) -> None:
        nonlocal served
        for _ in range(count):
            assert (await call(https, gw, "/api/v1/visitors", **{"X-API-Key": key}))[0] == 200
            served += 1

    await serve(5)
    assert await gw.recorder.call_buffer.flush()
    first = writer.pid
    assert first is not None and writer.started == 1

    os.kill(first, signal.SIGKILL)
    await serve(5)  # the gateway serves on
    assert await gw.recorder.call_buffer.flush()  # in-process, or by a new writer
    await serve(5)
    assert await gw.recorder.call_buffer.flush()
    assert writer.pid not in (None, first) and writer.started == 2 and writer.deaths == 1
    assert rows(path) == before + served

    # killed with a batch on its way: that batch too is written once
    await serve(5)
    flushing = asyncio.ensure_future(gw.recorder.call_buffer.flush())
    while writer._inflight is None or writer._inflight.done():
        await asyncio.sleep(0)
    second = writer.pid
    assert second is not None
    os.kill(second, signal.SIGKILL)
    assert await flushing
    assert rows(path) == before + served
    await gw.stop()
    assert writer.pid is None
