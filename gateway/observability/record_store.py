"""Where the audit trail and call log live: beside the key store, in the same database."""

from __future__ import annotations

import logging
import os
from typing import Literal

from gateway.config import Config
from gateway.keystore.factory import is_postgres
from gateway.observability.calllog_process import WriterProcess
from gateway.observability.records import RecordStore
from gateway.observability.records_sqlite import SQLiteRecordStore, records_path


def create_record_store(cfg: Config) -> RecordStore:
    if is_postgres(cfg.store.url):
        from gateway.observability.records_postgres import PostgresRecordStore

        return PostgresRecordStore(cfg.store.url)
    return SQLiteRecordStore(records_path(cfg), busy_timeout=cfg.store.busy_timeout)


log = logging.getLogger("gateway.records")

# With fewer CPUs the writer process shares the event loop's core (measured in bench/README.md:
# on 2 cores the thread costs less in all), with more it has one to itself.
AUTO_PROCESS_CPUS = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: `taskset`, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def call_writer_kind(choice: str, cpus: int) -> Literal["thread", "process"]:
    """`call_log.writer` decided: `auto` is a process with `AUTO_PROCESS_CPUS` CPUs or more."""
    if choice == "auto":
        return "process" if cpus >= AUTO_PROCESS_CPUS else "thread"
    return "process" if choice == "process" else "thread"


def create_call_writer(cfg: Config) -> WriterProcess | None:
    """The call log's writer process, when `call_log.writer` asks for one on SQLite; None: the
    record store's own connection writes (PostgreSQL: the event loop awaits asyncpg's I/O, no
    thread holds the GIL)."""
    if is_postgres(cfg.store.url) or not cfg.call_log.enabled and not cfg.usage.enabled:
        return None
    cpus = usable_cpus()
    kind = call_writer_kind(cfg.call_log.writer, cpus)
    log.info("call log writer", extra={"writer": kind, "configured": cfg.call_log.writer, "cpus": cpus})
    return WriterProcess(records_path(cfg), busy_timeout=cfg.store.busy_timeout) if kind == "process" else None
