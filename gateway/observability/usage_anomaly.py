"""Unusual patterns in a key's usage, read from the rollups: traffic or errors far above the key's
own baseline.

Every `check_interval` each instance sums the last hour per key (minute rollups; only keys over
the smaller of the two minimums come back) and, for those, the key's hourly average over the 24
hours before (hour rollups). A key is unusual when

- traffic: its last hour has at least `min_requests` requests and `traffic_factor` times its
  hourly average, and the key had traffic before (a new key has no baseline to jump from);
- errors: its last hour has at least `min_errors` answers in 4xx/5xx (429s from the gateway's
  own limits excepted: they are counted apart), at least half its requests, and `error_factor`
  times its hourly average of errors (a 401 burst: a revoked key still in use, a leaked key tried).

An anomaly is stored once per key, kind and hour window (its primary key), whichever instance
sees it first: only the instance whose insert made the row reports it, so the audit entry and
`key.anomaly` event happen once across instances, and again an hour later if it goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.observability.records import iso
from gateway.observability.usage import Granularity, UsageRow

log = logging.getLogger("gateway.usage")

AnomalyKind = Literal["traffic", "errors"]
WINDOW = 3600
BASELINE_HOURS = 24


@dataclass(frozen=True, slots=True)
class Anomaly:
    key_id: str
    kind: AnomalyKind
    window_t: int               # the hour (epoch s) it was seen in: one report per key, kind and hour
    tenant_id: str
    at: float                   # when it was seen (epoch s)
    requests: int               # in the hour before `at`
    errors: int                 # 4xx and 5xx in that hour, the gateway's own 429s excepted
    baseline_requests: float    # per hour, over the 24 hours before that hour
    baseline_errors: float

    def describe(self) -> str:
        if self.kind == "traffic":
            return (f"{self.requests} requests in an hour, {self.requests / max(self.baseline_requests, 1e-9):.0f}x "
                    f"its hourly average of {self.baseline_requests:.1f}")
        return (f"{self.errors} errors in {self.requests} requests in an hour "
                f"(hourly average {self.baseline_errors:.1f} errors)")

    def json(self) -> dict[str, Any]:
        utc = dt.UTC
        return {
            "kind": self.kind,
            "at": iso(dt.datetime.fromtimestamp(self.at, utc)),
            "window_start": iso(dt.datetime.fromtimestamp(self.window_t, utc)),
            "requests": self.requests,
            "errors": self.errors,
            "baseline_requests_per_hour": round(self.baseline_requests, 3),
            "baseline_errors_per_hour": round(self.baseline_errors, 3),
            "message": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class AnomalyRules:
    traffic_factor: float = 10.0
    min_requests: int = 100
    error_factor: float = 5.0
    min_errors: int = 50


class UsageReader(Protocol):
    async def usage_totals(self, granularity: Granularity, *, start: int, end: int, min_requests: int,
                           key_ids: Sequence[str] | None = None) -> list[UsageRow]: ...
    async def add_anomaly(self, anomaly: Anomaly) -> bool: ...


def _errors(counts: Sequence[int]) -> int:
    return counts[3] + counts[4] - counts[5]  # 4xx + 5xx, less the gateway's own 429s


def judge(recent: UsageRow, baseline: UsageRow | None, rules: AnomalyRules, *, now: float) -> list[Anomaly]:
    """The anomalies one key's last hour shows against its baseline (the 24 hours' totals)."""
    requests, errors = recent.counts[0], _errors(recent.counts)
    base_requests = baseline.counts[0] / BASELINE_HOURS if baseline else 0.0
    base_errors = _errors(baseline.counts) / BASELINE_HOURS if baseline else 0.0
    window_t = int(now // WINDOW) * WINDOW
    found: list[Anomaly] = []

    def anomaly(kind: AnomalyKind) -> Anomaly:
        return Anomaly(recent.key_id, kind, window_t, recent.tenant_id, now, requests, errors, base_requests,
                       base_errors)

    if requests >= rules.min_requests and base_requests > 0 and requests >= rules.traffic_factor * base_requests:
        found.append(anomaly("traffic"))
    if errors >= rules.min_errors and 2 * errors >= requests and errors >= rules.error_factor * base_errors:
        found.append(anomaly("errors"))
    return found


async def find_anomalies(store: UsageReader, rules: AnomalyRules, *, now: float) -> list[Anomaly]:
    """This instance's new anomalies: seen now, and not yet stored by any instance."""
    end = int(now // 60) * 60 + 60  # through the current minute
    recent = await store.usage_totals("minute", start=end - WINDOW, end=end,
                                      min_requests=min(rules.min_requests, rules.min_errors))
    if not recent:
        return []
    hour = int((end - WINDOW) // 3600) * 3600  # the baseline ends where the last hour's first hour starts
    baseline = {row.key_id: row for row in await store.usage_totals(
        "hour", start=hour - BASELINE_HOURS * 3600, end=hour, min_requests=0, key_ids=[r.key_id for r in recent])}
    new: list[Anomaly] = []
    for row in recent:
        for anomaly in judge(row, baseline.get(row.key_id), rules, now=now):
            if await store.add_anomaly(anomaly):
                new.append(anomaly)
    return new


OnAnomaly = Callable[[Anomaly], Awaitable[None]]
