"""Feeds the audit trail and the call log through their buffers, and reads them back.

Audit entries are rare and precious: appending one wakes the writer at once, and a read flushes
first, so an admin sees their own change. Call-log entries ride the periodic batch, and the
usage rollups are folded from each batch as its rows are made (usage.py), then written in the
batch's transaction. With the call log off, requests still ride the batch for the rollups alone
(the same record the call log would keep, no row written); with both off, none is made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from gateway.accounts.actors import Actor
from gateway.config import CallLogConfig
from gateway.observability.buffer import BufferedWriter
from gateway.observability.calllog_process import Flat, WriterProcess, flat
from gateway.observability.records import AuditEntry, CallRow, RecordStore
from gateway.observability.request_record import RequestRecord
from gateway.observability.usage import Rollup
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.records")

# Rows made per turn of the event loop when a batch is written: a fifth of a second's calls at
# 8,000 req/s took ~1.3 ms to convert in one go, which every request arriving meanwhile waited.
_ROWS_PER_TURN = 400


class Recorder:
    def __init__(
        self, store: RecordStore, cfg: CallLogConfig, *, usage: bool = True, clock: Callable[[], float] = time.time,
        writer: WriterProcess | None = None,
    ) -> None:
        self.store = store
        self.writer = writer  # the call log's writer process, if it has one (`call_log.writer`)
        self._cfg = cfg
        self._usage = usage
        self._wanted = cfg.enabled or usage
        self._clock = clock
        self.audit_buffer: BufferedWriter[AuditEntry] = BufferedWriter(
            "audit trail", store.append_audit, interval=cfg.flush_interval, capacity=100_000, batch=200
        )
        self.call_buffer: BufferedWriter[RequestRecord] = BufferedWriter(
            "call log", self._append_calls if writer is None else self._send_calls,
            interval=cfg.flush_interval, capacity=cfg.buffer_size,
            batch=5000,  # one transaction per second at 5k requests/s
        )
        self._pruner: asyncio.Task[None] | None = None

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def audit(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: str,
        *,
        tenant_id: str | None = None,
        key_name: str | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        self.audit_buffer.append(
            AuditEntry(
                at=self._now(), actor=actor.name, action=action, target_type=target_type,
                target_id=target_id, tenant_id=tenant_id, key_name=key_name, source_ip=actor.source_ip,
                actor_email=actor.email, details=details,
            )
        )
        self.audit_buffer.wake()

    @property
    def calls_enabled(self) -> bool:
        """Whether finished requests are wanted at all (the call log, the usage rollups or both)."""
        return self._wanted

    def call(self, record: RequestRecord) -> None:
        """A request into the call log: its row is made when the batch is written, in one tight
        loop, rather than per request in the middle of everything else. Routed requests, and the
        refusals of unrouted ones (404 ROUTE_NOT_FOUND, a path or message refused with 400, plain
        HTTP): who probes the gateway is worth a row too. The gateway's own endpoints answering
        without an error (the JWKS, a token minted) are not calls of an API."""
        if self._wanted and (record.route is not None or record.code is not None):
            self.call_buffer.append(record)

    async def _append_calls(self, calls: Sequence[RequestRecord]) -> None:
        rows: list[CallRow] = []
        keep, rollup = self._cfg.enabled, Rollup() if self._usage else None
        for start in range(0, len(calls), _ROWS_PER_TURN):
            if start:
                await asyncio.sleep(0)  # the requests waiting meanwhile go first
            made = [_row(record) for record in calls[start : start + _ROWS_PER_TURN]]
            if rollup is not None:
                rollup.add(made)
            if keep:
                rows += made
        await self.store.append_calls(rows, rollup)

    async def _send_calls(self, calls: Sequence[RequestRecord]) -> None:
        """A batch to the writer process: flat tuples, its rows and rollup made there."""
        assert self.writer is not None
        records: list[Flat] = []
        for start in range(0, len(calls), _ROWS_PER_TURN):
            if start:
                await asyncio.sleep(0)
            records += flat(calls[start : start + _ROWS_PER_TURN])
        await self.writer.write(records, keep=self._cfg.enabled, usage=self._usage)

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(3600)
            cutoff = self._now() - dt.timedelta(days=self._cfg.retention_days)
            try:
                removed = await self.store.prune_calls(older_than=cutoff, max_rows=self._cfg.max_rows)
            except Exception as exc:
                log.warning("call log retention failed", extra={"error": str(exc)})
                continue
            if removed:
                log.info("call log retention", extra={"removed": removed})

    def start(self) -> None:
        if self.writer is not None and self._wanted:
            self.writer.start()
        self.audit_buffer.start()
        self.call_buffer.start()
        self._pruner = asyncio.get_running_loop().create_task(self._prune())

    async def stop(self) -> None:
        await cancel_and_wait(self._pruner)  # a prune in progress ends before the store closes
        self._pruner = None
        await self.audit_buffer.stop()
        await self.call_buffer.stop()
        if self.writer is not None:
            await self.writer.close()  # after the last batch: it has been confirmed written


def _row(record: RequestRecord) -> CallRow:
    identity = record.identity
    done, upstream = record.done, record.upstream_started
    return (
        record.at, record.request_id,
        identity.tenant_id if identity else None, identity.key_id if identity else None,
        identity.key_name if identity else None,
        record.method, record.route, record.path, record.status,
        round((done - record.started) * 1000, 3),
        round((done - upstream) * 1000, 3) if upstream is not None else None,
        record.rate_limited, record.client_ip or None, record.code,
    )
