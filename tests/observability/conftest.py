"""The record store under test: each test runs on SQLite and on PostgreSQL (the conformance suite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.observability.records import RecordStore
from gateway.observability.records_postgres import PostgresRecordStore
from gateway.observability.records_sqlite import SQLiteRecordStore
from tests.services import drop_schema, postgres_url, require_postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordStore]:
    if request.param == "postgres":
        require_postgres()
        store: RecordStore = PostgresRecordStore(postgres_url(tmp_path))
    else:
        store = SQLiteRecordStore(str(tmp_path / "records.db"))
    await store.open()
    yield store
    await store.close()
    if request.param == "postgres":
        await drop_schema(postgres_url(tmp_path))


def second_store(store: RecordStore, tmp_path: Path) -> RecordStore:
    """Another instance's connection to the same records (same file, or same schema)."""
    if isinstance(store, PostgresRecordStore):
        return PostgresRecordStore(postgres_url(tmp_path))
    return SQLiteRecordStore(str(tmp_path / "records.db"))
