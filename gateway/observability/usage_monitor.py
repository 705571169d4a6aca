"""The usage rollups' background work: the periodic look for unusual keys, and retention.

Both read or delete by time on the rollup tables' indexes, never the call log, and run in every
instance: a delete is idempotent, and an anomaly is reported only by the instance that stored it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.config import UsageAnomaliesConfig, UsageConfig
from gateway.observability.usage import Granularity
from gateway.observability.usage_anomaly import Anomaly, AnomalyRules, OnAnomaly, UsageReader, find_anomalies
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.usage")
PRUNE_PERIOD = 3600.0


def rules(cfg: UsageAnomaliesConfig) -> AnomalyRules:
    return AnomalyRules(traffic_factor=cfg.traffic_factor, min_requests=cfg.min_requests,
                        error_factor=cfg.error_factor, min_errors=cfg.min_errors)


def retention(cfg: UsageConfig) -> dict[Granularity, int]:
    """Seconds each granularity is kept."""
    return {"minute": cfg.minute_retention_hours * 3600, "hour": cfg.hour_retention_days * 86400,
            "day": cfg.day_retention_days * 86400}


class UsageStore(UsageReader, Protocol):
    async def prune_usage(self, granularity: Granularity, *, before: int) -> int: ...
    async def prune_anomalies(self, *, before: float) -> int: ...
    async def latest_anomalies(self, key_ids: Sequence[str], *, since: float) -> dict[str, Anomaly]: ...


class UsageMonitor:
    def __init__(self, store: UsageStore, cfg: UsageConfig, *, on_anomaly: OnAnomaly,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._cfg = cfg
        self._on_anomaly = on_anomaly
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> list[Anomaly]:
        """Look once; report (and return) the anomalies no instance had stored yet."""
        new = await find_anomalies(self._store, rules(self._cfg.anomalies), now=self._clock())
        for anomaly in new:
            log.warning("unusual key usage", extra={"key_id": anomaly.key_id, "tenant_id": anomaly.tenant_id,
                                                    "kind": anomaly.kind, "detail": anomaly.describe()})
            try:
                await self._on_anomaly(anomaly)
            except Exception:  # one failed report must not hide the others
                log.exception("reporting a key anomaly failed", extra={"key_id": anomaly.key_id})
        return new

    async def prune(self) -> int:
        """Rollups past their granularity's retention, and anomalies past the hours' retention."""
        now = self._clock()
        removed = 0
        for granularity, keep in retention(self._cfg).items():
            removed += await self._store.prune_usage(granularity, before=int(now - keep))
        removed += await self._store.prune_anomalies(before=now - self._cfg.hour_retention_days * 86400)
        return removed

    async def marks(self, key_ids: Sequence[str]) -> dict[str, Anomaly]:
        """The keys' latest anomalies still worth showing."""
        if not key_ids:
            return {}
        return await self._store.latest_anomalies(key_ids, since=self._clock() - self._cfg.anomalies.mark_hours * 3600)

    async def _run(self) -> None:
        interval = self._cfg.anomalies.check_interval
        pruned = float("-inf")
        while True:
            await asyncio.sleep(interval if self._cfg.anomalies.enabled else PRUNE_PERIOD)  # a period
            try:
                if self._cfg.anomalies.enabled:
                    await self.check()
                if time.monotonic() - pruned >= PRUNE_PERIOD:
                    pruned = time.monotonic()
                    removed = await self.prune()
                    if removed:
                        log.info("usage retention", extra={"removed": removed})
            except Exception as exc:  # a store outage: try again next period
                log.warning("usage check failed", extra={"error": str(exc)})

    def start(self) -> None:
        if self._cfg.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
