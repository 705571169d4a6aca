"""Where the audit trail and call log live: beside the key store, in the same database."""

from __future__ import annotations

from gateway.config import Config
from gateway.keystore.factory import is_postgres
from gateway.observability.records import RecordStore
from gateway.observability.records_sqlite import SQLiteRecordStore, records_path


def create_record_store(cfg: Config) -> RecordStore:
    if is_postgres(cfg.store.url):
        from gateway.observability.records_postgres import PostgresRecordStore

        return PostgresRecordStore(cfg.store.url)
    return SQLiteRecordStore(records_path(cfg), busy_timeout=cfg.store.busy_timeout)
