"""Figures owned by other objects (the identity cache, the write buffers, the failed-credential
budget, the last-used buffer), named for Prometheus here, in one place, and read when scraped;
with several workers, pushed into prometheus-client's shared files instead (`StatsPusher`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.access.failures import AuthFailureThrottle
from gateway.exchange import Identity
from gateway.keystore.cache import IdentityCache
from gateway.keystore.lastused import LastUsedRecorder
from gateway.observability.metrics import multiprocess_dir
from gateway.observability.recorder import Recorder
from gateway.ratelimit import RateLimiter

Row = tuple[str, str, str, float]  # kind ("counter", "gauge" or "flag": a 0/1 gauge), name, help, value
Read = Callable[[], Iterable[Row]]


class ServiceFigures:
    """The rows, read afresh on every call."""

    def __init__(
        self, cache: IdentityCache[Identity], recorder: Recorder, auth_failures: AuthFailureThrottle | None,
        last_used: LastUsedRecorder, limiter: RateLimiter | None = None,
    ) -> None:
        self._cache = cache
        self._limiter = limiter
        self._recorder = recorder
        self._auth_failures = auth_failures
        self._last_used = last_used

    def __call__(self) -> list[Row]:
        cache, stats = self._cache, self._cache.stats
        rows: list[Row] = [
            ("counter", "gateway_key_cache_hits_total", "Key cache hits.", stats.hits),
            ("counter", "gateway_key_cache_misses_total", "Key cache misses (store lookups).", stats.misses),
            ("counter", "gateway_key_cache_negative_hits_total", "Unknown keys answered from the negative cache.",
             stats.negative_hits),
            ("counter", "gateway_key_cache_evictions_total", "Key cache evictions.", stats.evictions),
            ("gauge", "gateway_key_cache_size", "Identities in the key cache.", len(cache)),
        ]
        for name, buffer in (("audit", self._recorder.audit_buffer), ("call_log", self._recorder.call_buffer)):
            rows += [
                ("gauge", f"gateway_{name}_queue_depth", f"Entries waiting to be written ({name}).", len(buffer)),
                ("counter", f"gateway_{name}_flush_failures_total", f"Failed writes ({name}).", buffer.flush_failures),
                ("counter", f"gateway_{name}_dropped_total", f"Entries dropped on a full buffer ({name}).",
                 buffer.dropped),
            ]
        failures = self._auth_failures
        if failures is not None:
            rows += [
                ("counter", "gateway_auth_failures_held_total",
                 "401 answers held back from clients past ratelimit.failed_auth_per_minute.", failures.held),
                ("gauge", "gateway_auth_failures_clients", "Client addresses with recent failed credentials.",
                 len(failures)),
            ]
        rows.append(("counter", "gateway_last_used_flush_failures_total", "Failed last-used writes.",
                     self._last_used.flush_failures))
        if self._limiter is not None:
            rows.append(("flag", "gateway_ratelimit_degraded",
                         "1 while the rate-limit backend is unreachable and requests are admitted without limits "
                         "(ratelimit.on_backend_error: allow).", float(self._limiter.degraded)))
        return rows


def export(read: Read, registry: CollectorRegistry) -> StatsPusher | None:
    """Registered to be read at scrape time; with several workers, a pusher the caller runs."""
    if multiprocess_dir() is None:
        registry.register(StatsCollector(read))
        return None
    return StatsPusher(read, registry)


class StatsCollector(Collector):
    """Figures owned by other objects (cache, buffers), read at scrape time rather than pushed."""

    def __init__(self, read: Read) -> None:
        self._read = read

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for kind, name, doc, value in self._read():
            family = families.get(name)
            if family is None:
                family = (
                    CounterMetricFamily(name.removesuffix("_total"), doc)
                    if kind == "counter"
                    else GaugeMetricFamily(name, doc)
                )
                families[name] = family
            family.add_metric([], value)
        return list(families.values())



class StatsPusher:
    """Multiprocess mode: the figures StatsCollector reads at scrape time, pushed instead into
    metrics that prometheus-client aggregates across workers (counters as increments, gauges
    summed over live processes)."""

    def __init__(self, read: Read, registry: CollectorRegistry) -> None:
        self._read = read
        self._metrics: dict[str, Counter | Gauge] = {}
        self._last: dict[str, float] = {}
        for kind, name, doc, _ in read():
            if kind == "counter":
                self._metrics[name] = Counter(name, doc, registry=registry)
            elif kind == "flag":  # set if any live worker has it set
                self._metrics[name] = Gauge(name, doc, registry=registry, multiprocess_mode="livemax")
            else:
                self._metrics[name] = Gauge(name, doc, registry=registry, multiprocess_mode="livesum")

    def push(self) -> None:
        for _kind, name, _, value in self._read():
            metric = self._metrics.get(name)
            if metric is None:
                continue
            if isinstance(metric, Counter):
                delta = value - self._last.get(name, 0.0)
                if delta > 0:
                    metric.inc(delta)
                self._last[name] = value
            else:
                metric.set(value)
