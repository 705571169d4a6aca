"""Prometheus metrics on a registry passed in (each test app has its own), cheap on the hot path.

Labels are bounded: route names, methods, status classes and fixed reasons, never a raw path,
key id or tenant id, unless `metrics.per_tenant_label` is switched on (one series per tenant:
mind the cardinality). Label children are resolved once and kept, so a request costs a few
dictionary lookups and counter increments. Cache and buffer figures are read at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.proxy.pipeline import RequestScope

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

AUTH_REASONS = {
    "MISSING_CREDENTIALS": "missing",
    "INVALID_CREDENTIALS": "invalid",
    "EXPIRED_CREDENTIALS": "expired",
    "REVOKED_CREDENTIALS": "revoked",
    "INSUFFICIENT_SCOPE": "scope",
    "RESOURCE_FORBIDDEN": "resource",
}
STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


class Metrics:
    def __init__(self, registry: CollectorRegistry, *, per_tenant: bool = False) -> None:
        self.registry = registry
        self.per_tenant = per_tenant
        labels = ["route", "method", "status_class"] + (["tenant"] if per_tenant else [])
        self.requests = Counter(
            "gateway_requests_total", "Requests handled by the proxy listener.", labels, registry=registry
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds", "Time from request to the end of the response.",
            ["route"], buckets=BUCKETS, registry=registry,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds", "Time spent on the upstream exchange.",
            ["route"], buckets=BUCKETS, registry=registry,
        )
        self.auth = Counter(
            "gateway_auth_total", "Authentication and authorization outcomes.", ["method", "result"],
            registry=registry,
        )
        self.ratelimit = Counter(
            "gateway_ratelimit_decisions_total", "Rate-limit decisions.", ["result"], registry=registry
        )
        self.limiter_errors = Counter(
            "gateway_ratelimit_backend_errors_total", "Rate-limit backend failures (decided by on_backend_error).",
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total", "Upstream failures by kind.", ["route", "kind"], registry=registry
        )
        self.invalidation_lag = Histogram(
            "gateway_invalidation_lag_seconds",
            "Time from a change on one instance to its cache invalidation on this one (Redis pub/sub).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        self.in_flight = Gauge("gateway_requests_in_flight", "Requests being handled now.", registry=registry,
                               multiprocess_mode="livesum")
        build = Gauge("gateway_build_info", "Build information.", ["version"], registry=registry,
                      multiprocess_mode="max")
        build.labels(__version__).set(1)
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram, Histogram]] = {}
        self._allowed = self.ratelimit.labels("allowed")
        self._limited = self.ratelimit.labels("limited")

    def _route_children(self, key: tuple[str, ...]) -> tuple[Counter, Histogram, Histogram]:
        children = self._children.get(key)
        if children is None:
            route = key[0]
            children = (self.requests.labels(*key), self.duration.labels(route), self.upstream_duration.labels(route))
            self._children[key] = children
        return children

    def observe(self, scope: RequestScope, done: float) -> None:
        route = scope.route.name if scope.route is not None else "(none)"
        key: tuple[str, ...] = (route, scope.method, STATUS_CLASS.get(scope.status // 100, "5xx"))
        if self.per_tenant:
            identity = scope.extra.get("identity")
            key += (identity.tenant_id if identity else "",)
        requests, duration, upstream = self._route_children(key)
        requests.inc()
        duration.observe(done - scope.started)
        if scope.upstream_started is not None:
            upstream.observe(done - scope.upstream_started)
        code = scope.error_code
        if scope.auth_method is not None or code in AUTH_REASONS:
            method = scope.auth_method or "none"
            result = AUTH_REASONS.get(code or "", "ok")
            self.auth.labels(method, result).inc()
        if scope.rate_limited:
            self._limited.inc()
        elif "identity" in scope.extra and code not in AUTH_REASONS:
            self._allowed.inc()
        if code == "UPSTREAM_TIMEOUT":
            self.upstream_errors.labels(route, "timeout").inc()
        elif code == "UPSTREAM_UNAVAILABLE":
            self.upstream_errors.labels(route, "unavailable").inc()


class StatsCollector(Collector):
    """Figures owned by other objects (cache, buffers), read at scrape time rather than pushed."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, str, float]]]) -> None:
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


def multiprocess_dir() -> str | None:
    """Set (by the workers supervisor) when several processes serve one gateway."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """What `/metrics` renders: this process's registry, or with several workers the sum over
    all of them from prometheus-client's multiprocess files (any worker may answer a scrape)."""
    if multiprocess_dir() is None:
        return registry
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged


class StatsPusher:
    """Multiprocess mode: the figures StatsCollector reads at scrape time, pushed instead into
    metrics that prometheus-client aggregates across workers (counters as increments, gauges
    summed over live processes)."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, str, float]]], registry: CollectorRegistry) -> None:
        self._read = read
        self._metrics: dict[str, Counter | Gauge] = {}
        self._last: dict[str, float] = {}
        for kind, name, doc, _ in read():
            if kind == "counter":
                self._metrics[name] = Counter(name, doc, registry=registry)
            else:
                self._metrics[name] = Gauge(name, doc, registry=registry, multiprocess_mode="livesum")

    def push(self) -> None:
        for kind, name, _, value in self._read():
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
