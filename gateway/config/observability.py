"""What the gateway records: the `logging`, `metrics`, `call_log` and `usage` sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from gateway.config.fields import (
    Int,
    Number,
    OneOf,
)
from gateway.config.keytypes import SECTION, Count, Flag, Seconds


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Process logs and the access log (JSON lines on stderr)."""

    __pydantic_config__ = SECTION
    level: Annotated[Literal["debug", "info", "warning", "error"], OneOf("debug", "info", "warning", "error")] = "info"
    """Least severity logged."""
    access_log: Flag = True
    """One JSON line per request."""
    access_log_sample_rate: Annotated[float, Number(0, 1, open_lo=False)] = 1.0
    """Fraction of requests logged."""


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus metrics at `/metrics` on the admin listener."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: request metrics are not counted (cache and buffer figures still are)."""
    per_tenant_label: Flag = False
    """Add a tenant label to request metrics (one series per tenant!)."""


@dataclass(frozen=True, slots=True)
class CallLogConfig:
    """One row per proxied request, readable at `/admin/calls`."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no rows are kept."""
    # Small batches often: a second's rows written at once held the event loop (binding the
    # parameters takes the GIL) long enough to double the open-loop p99 at half load (9-10 ->
    # ~5 ms), for ~2 % more CPU per request at 0.1 s.
    flush_interval: Seconds = 0.2
    """Rows are written in batches this often (small batches: a big one holds the event loop)."""
    buffer_size: Count = 10000
    """Rows kept in memory while the store is slow (overflow is counted)."""
    retention_days: Count = 30
    """Rows older than this are removed."""
    max_rows: Count = 1000000
    """At most this many rows are kept (the oldest go first)."""
    writer: Annotated[Literal["auto", "thread", "process"], OneOf("auto", "thread", "process")] = "auto"
    """Who writes the rows into SQLite: `thread` (in the gateway's process), `process` (a writer
    process per worker, off the event loop's CPU) or `auto` (`process` with at least 4 CPUs to run
    on, else `thread`). PostgreSQL: no effect."""


@dataclass(frozen=True, slots=True)
class UsageAnomaliesConfig:
    """Keys whose last hour is far above their own hourly average over the 24 hours before: the
    key shows it (`anomaly`), and a `key.anomaly` event and audit entry are made, once per key,
    kind and hour however many instances look."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no look for unusual keys."""
    check_interval: Annotated[float, Number(1, 3600, open_lo=False)] = 60.0
    """Seconds between looks (every instance looks; an anomaly is reported once)."""
    traffic_factor: Annotated[float, Number(1, 1e6, open_lo=False)] = 10.0
    """Traffic: the last hour at least this many times the key's hourly average (a key with no
    traffic before has no average and is not judged)..."""
    min_requests: Count = 100
    """...and at least this many requests."""
    error_factor: Annotated[float, Number(1, 1e6, open_lo=False)] = 5.0
    """Errors: 4xx/5xx answers (the gateway's own 429s aside) at least this many times the key's
    hourly average of them, making at least half its requests..."""
    min_errors: Count = 50
    """...and at least this many."""
    mark_hours: Annotated[int, Int(1, 8760)] = 24
    """How long a key shows its latest anomaly."""


@dataclass(frozen=True, slots=True)
class UsageConfig:
    """Usage per key and tenant (requests by status class, rate-limited, latency) rolled up per
    minute, hour and day from the call log's batches: `/admin/usage`, the console's charts."""

    __pydantic_config__ = SECTION
    enabled: Flag = True
    """false: no rollups are kept (usage answers empty series); the call log is not affected. On
    with the call log off, usage is counted from the same per-request record, no row written."""
    minute_retention_hours: Annotated[int, Int(1, 8760)] = 48
    """Minute rollups older than this are removed."""
    hour_retention_days: Annotated[int, Int(1, 3650)] = 90
    """Hour rollups (and anomaly marks) older than this are removed."""
    day_retention_days: Annotated[int, Int(1, 36500)] = 730
    """Day rollups older than this are removed."""
    anomalies: UsageAnomaliesConfig = field(default_factory=UsageAnomaliesConfig)
    """Unusual keys."""
